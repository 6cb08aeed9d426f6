echo $(sys.host) "x=$(k)" 'a $(s) b' $(( $(k) + 1 )) `echo $(k)` $(date)
cat <<EOF
$(k)
EOF
cat <<'Q'
$(k)
Q
# $(k)
