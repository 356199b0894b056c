# Actions on SAs: bring a VPN up, and close every SA of the gateway. Each action answers the
# unique-ids of the SAs it affected (those of /ike/ike-sa), or an rpc-error with the reason:
# here the peer (198.51.100.2) does not exist, so initiate fails with charon's reason.
import os

from ncclient import manager
from ncclient.operations import RPCError
from ncclient.xml_ import to_ele

IPNF = "urn:ipsec-nf:yang:ipsec-nf"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    try:
        up = m.dispatch(to_ele(f'<initiate xmlns="{IPNF}"><vpn>siteA-siteB</vpn>'
                               "<timeout>5</timeout></initiate>"))
        print(up.xml)  # <ike-sa>1</ike-sa><child-sa>1</child-sa>: the SAs established
    except RPCError as e:
        print("initiate:", e.tag, e.message)  # operation-failed CHILD_SA 'trunk' not ...
    # rekey and terminate take a VPN (and security-policy) or an <ike-sa>/<child-sa> id
    print(m.dispatch(to_ele(f'<clear xmlns="{IPNF}"><timeout>5</timeout></clear>')).xml)
    print(m.dispatch(to_ele(f'<reset-counters xmlns="{IPNF}"/>')).xml)
