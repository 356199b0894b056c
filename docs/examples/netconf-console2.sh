# The same with netconf-console2: it wraps --edit-config's file in <config> itself, and an
# XPath filter needs a namespace prefix (declared with --ns).
nc="netconf-console2 --host 127.0.0.1 --port 830 -u admin -p $IPSEC_NF_PASSWORD"
$nc --db candidate --edit-config site-a.xml --commit
$nc --get-config --ns ipnf=urn:ipsec-nf:yang:ipsec-nf -x "/ipnf:ike/ipnf:vpn[ipnf:name='siteA-siteB']"
$nc --get -x /ipnf:ike/ipnf:apply-status --ns ipnf=urn:ipsec-nf:yang:ipsec-nf
