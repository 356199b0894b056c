"""The gNMI server (gRPC): Capabilities, Get, Set and Subscribe over our YANG modules.

``server.py`` wires the grpc.aio server (TLS or plaintext) and checks the username/password
metadata; ``paths.py`` turns gNMI paths into data paths; ``data.py`` builds what a user may
read as libyang data (JSON_IETF is libyang's); ``get.py``, ``set.py`` and ``subscribe.py``
are the operations. The generated gNMI messages and service are pygnmi's
(``pygnmi.spec.v080``).
"""
