"""kill -9 at any instant leaves running either the old or the new config, never a mix."""

from __future__ import annotations

import random
import select
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
    if i == 0:
        print("committed", flush=True)  # the parent kills us only from here on
    i += 1
"""


def test_kill_9_during_commits(tmp_path: Path) -> None:
    site = ROOT / "tests" / "data" / "site_a.xml"
    schema = Schema()
    seen: set[str] = set()
    for _ in range(10):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(site)], cwd=ROOT,
                             stdout=subprocess.PIPE)
        # killed at a random instant among the commits after the first (however long the
        # start takes on a loaded machine: before the first there is nothing to keep)
        assert p.stdout is not None
        ready, _, _ = select.select([p.stdout], [], [], 120)
        assert ready and p.stdout.readline() == b"committed\n", "the writer never committed"
        time.sleep(random.uniform(0.0, 0.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        ds = Datastores(schema, tmp_path)  # parses and validates the stored running config
        local_id = resolve(ds.config).vpns["siteA-siteB"].local_id
        assert local_id in ("gw0.example.net", "gw1.example.net")
        seen.add(local_id)
    assert seen, "the writer never committed"
