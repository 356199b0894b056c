# Read one VPN back (subtree filter), then the SA table and the apply status.
import os

from ncclient import manager

IPNF = "urn:ipsec-nf:yang:ipsec-nf"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    vpn = m.get_config(source="running", filter=(
        "subtree", f'<ike xmlns="{IPNF}"><vpn><name>siteA-siteB</name></vpn></ike>'))
    print(vpn.data_xml)
    state = m.get(filter=("subtree", f'<ike xmlns="{IPNF}"><ike-sa/><apply-status/></ike>'))
    print(state.data_xml)  # IKE/CHILD SAs with counters; applied/pending/failed per entry
