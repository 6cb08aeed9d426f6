{{#open}}
