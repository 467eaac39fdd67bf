"""Seed step 1 (run once, kept for provenance): the models older EcoLogits releases listed that
0.11.3 (our registry) no longer does, with the release that last listed them.

Run in a folder holding the unpacked wheels (``pip download --no-deps ecologits==X`` for 0.3.2,
0.5.2, 0.7.3, 0.8.2, 0.9.3, 0.10.2, 0.11.2, then unzip each into ``ecologits-X-py3-none-any/``);
writes ``found.json`` there, read by ``build_cards.py``.
"""

import glob
import json
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parents[3]
cur = json.loads((REPO / "exporters/data/llm_models.json").read_text())
have = {(m["provider"], n) for m in cur["models"] for n in [m["name"], *m["aliases"]]}


def ver(p):
    return tuple(int(x) for x in re.search(r"ecologits-([\d.]+)-py3", p).group(1).split("."))


found = {}
for f in sorted(glob.glob("*/ecologits/data/models.json"), key=ver):
    v = ".".join(map(str, ver(f)))
    d = json.loads(pathlib.Path(f).read_text())
    ms = d["models"]
    for m in ms:
        k = (m["provider"], m["name"])
        if k in have:
            continue
        a = m["architecture"]
        p = a["parameters"]
        if a["type"] == "moe":
            tot, act = p["total"], p["active"]
        else:
            tot = act = p
        found[k] = {
            "v": v,
            "arch": a["type"],
            "total": tot,
            "active": act,
            "warn": m.get("warnings") or [],
            "src": m.get("sources") or [],
        }
pathlib.Path("found.json").write_text(
    json.dumps({f"{k[0]}|{k[1]}": v for k, v in found.items()}, indent=0)
)
for k, v in sorted(found.items()):
    if k[0] != "huggingface_hub":
        print(k[0], k[1], v["v"], v["arch"], v["total"], v["active"])
print(len(found), sum(1 for k in found if k[0] == "huggingface_hub"))
