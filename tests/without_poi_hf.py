"""The prelude of subprocess scripts that must run as on a machine without poi_hf (remote-code tests)."""

# poi_hf is installed in editable mode (a .pth path entry or an import hook, depending on the installer), so taking it
# off sys.path is not enough; a meta-path finder in front of all others refuses it however it is installed.
HIDE_POI_HF = """
import importlib.abc, sys

class HidePoiHf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "poi_hf":
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)

sys.meta_path.insert(0, HidePoiHf())
try:
    import poi_hf
except ImportError:
    pass
else:
    raise SystemExit("poi_hf is importable")
"""
