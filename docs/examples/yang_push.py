# YANG-Push (RFC 8641): an on-change subscription to the VPNs of running, then a change.
# The first update is the whole selection (push-update), each change a YANG Patch
# (push-change-update), at most one per dampening period (here 1 s).
import os

from ncclient import manager
from ncclient.xml_ import to_ele

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IPNF = "urn:ipsec-nf:yang:ipsec-nf"
SN = "urn:ietf:params:xml:ns:yang:ietf-subscribed-notifications"
YP = "urn:ietf:params:xml:ns:yang:ietf-yang-push"
DS = "urn:ietf:params:xml:ns:yang:ietf-datastores"

with manager.connect(host="127.0.0.1", port=830, username="admin",
                     password=os.environ["IPSEC_NF_PASSWORD"], hostkey_verify=False) as m:
    reply = m.dispatch(to_ele(
        f'<establish-subscription xmlns="{SN}" xmlns:yp="{YP}" xmlns:ds="{DS}">'
        "<yp:datastore>ds:running</yp:datastore>"
        f'<yp:datastore-subtree-filter><ike xmlns="{IPNF}"><vpn/></ike>'
        "</yp:datastore-subtree-filter>"
        "<yp:on-change><yp:dampening-period>100</yp:dampening-period></yp:on-change>"
        "</establish-subscription>"))
    print(reply.xml)  # the subscription's <id>
    print(m.take_notification(timeout=10).notification_xml)  # push-update: the VPNs
    m.edit_config(target="candidate", config=(
        f'<config xmlns="{NC}"><ike xmlns="{IPNF}"><vpn><name>siteA-siteB</name>'
        "<description>HQ to branch</description></vpn></ike></config>"))
    m.commit()
    # push-change-update: <operation>create</operation>
    # <target>/ipsec-nf:ike/vpn=siteA-siteB/description</target> and its <value>
    print(m.take_notification(timeout=10).notification_xml)
