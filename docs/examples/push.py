# Push the site-to-site VPN (site-a.xml) into the candidate, commit, and wait until charon
# has it.
import os

from ncclient import manager
from ncclient.xml_ import to_ele

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    with open("site-a.xml") as f:
        m.edit_config(target="candidate", config=f'<config xmlns="{NC}">{f.read()}</config>')
    m.commit()
    reply = m.dispatch(to_ele(f'<wait-applied xmlns="{IPNF}"><timeout>20</timeout>'
                              "</wait-applied>"))
    print(reply.xml)  # <result>applied</result> and one <entry> per VPN and key changed
