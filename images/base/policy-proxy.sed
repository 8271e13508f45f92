# The images' policy: policy/default.toml with `[proxy] mode = "on"`, and
# nothing else changed (the base Dockerfile checks that exactly one line
# differs). Applied at build time: sed -f policy-proxy.sed default.toml
/^\[proxy\]$/,/^\[/ s/^mode = "off"$/mode = "on"/
