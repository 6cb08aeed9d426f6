-- Schema version 8: certificate renewal. The certificate a device had before its last
-- renewal stays accepted until the device first presents the new one, so a renewal cut
-- short (the answer lost on the way) never locks the device out.
ALTER TABLE devices ADD COLUMN prev_cert_fingerprint TEXT;
