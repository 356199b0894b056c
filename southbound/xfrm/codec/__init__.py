"""Our typed XFRM values ⇄ the flat fields (:mod:`southbound.xfrm.layouts`) and attributes of
the XFRM messages (:mod:`southbound.xfrm.messages`).

- :mod:`.fields`: addresses, selectors, lifetimes (shared by every message);
- :mod:`.states`: SAs; :mod:`.policies`: policies; :mod:`.events`: multicast events.

``*_fields`` functions give the fields of a message (a dict to ``update`` a message with) and
``*_attrs`` its attribute list; ``*_from`` functions read a decoded pyroute2 message back into
:mod:`southbound.xfrm.types` values. Nothing here touches a socket.
"""
