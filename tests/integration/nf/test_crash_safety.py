"""kill -9 at any instant leaves running either the old or the new config, never a mix."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from nf.datastore import Datastores
from nf.schema import Schema
from nf.templates import resolve

ROOT = Path(__file__).resolve().parents[3]
WRITER = """
import sys
from pathlib import Path
from lxml import etree
from nf.datastore import Datastores
from nf.schema import Schema
ds = Datastores(Schema(), Path(sys.argv[1]))
site = (Path(sys.argv[2])).read_text()
i = 0
while True:
    xml = site.replace("secgwa.example.net</local-id>", f"gw{i % 2}.example.net</local-id>")
    ds.edit("running", etree.fromstring(xml.encode()), sid=1)
    i += 1
"""


def test_kill_9_during_commits(tmp_path: Path) -> None:
    site = ROOT / "tests" / "data" / "site_a.xml"
    schema = Schema()
    seen: set[str] = set()
    for _ in range(10):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(site)], cwd=ROOT)
        time.sleep(random.uniform(0.8, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        ds = Datastores(schema, tmp_path)  # parses and validates the stored running config
        local_id = resolve(ds.config).vpns["siteA-siteB"].local_id
        assert local_id in ("gw0.example.net", "gw1.example.net")
        seen.add(local_id)
    assert seen, "the writer never committed"
