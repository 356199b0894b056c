# A confirmed commit: the change is undone unless confirmed within 60 seconds.
import os

from ncclient import manager

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    m.edit_config(target="candidate", config=(
        f'<config xmlns="{NC}"><ike xmlns="{IPNF}"><vpn><name>siteA-siteB</name>'
        "<local-id>gw-a.example.net</local-id></vpn></ike></config>"))
    m.commit(confirmed=True, timeout="60")
    # ... check that the tunnel still comes up, then confirm:
    m.commit()
    print("confirmed")
