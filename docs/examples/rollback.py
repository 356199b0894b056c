# The commit history, and going back one commit (like a router's `rollback 1`).
import os

from ncclient import manager
from ncclient.xml_ import to_ele

IPNF = "urn:ipsec-nf:yang:ipsec-nf"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    print(m.dispatch(to_ele(f'<list-commits xmlns="{IPNF}"/>')).xml)
    m.dispatch(to_ele(f'<rollback xmlns="{IPNF}"><rollback>1</rollback></rollback>'))
    m.commit()  # rollback loads the old config into the candidate; commit applies it
    print("rolled back")
