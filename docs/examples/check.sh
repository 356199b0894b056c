# Check site-a.xml offline before pushing it (no server needed): each VPN's effective
# parameters (templates resolved) and the connection charon would be given; secrets show as
# <hidden>. The exit status is 0 when valid, 1 with every error found, 2 for an unreadable file.
set -e
ipsec-nf check site-a.xml
# For a kernel-netlink gateway, as JSON for a script:
ipsec-nf check --backend kernel-netlink --format json site-a.xml > /dev/null && echo "valid"
