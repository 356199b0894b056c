# Subscribe to the NETCONF stream, make a change, print the notifications it raises.
import os

from ncclient import manager

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    m.create_subscription()
    m.edit_config(target="candidate", config=(
        f'<config xmlns="{NC}"><ike xmlns="{IPNF}"><vpn><name>siteA-siteB</name>'
        "<remote-id>gw-b.example.net</remote-id></vpn></ike></config>"))
    m.commit()
    n = m.take_notification(timeout=10)
    print(n.notification_xml)  # netconf-config-change: who changed what
