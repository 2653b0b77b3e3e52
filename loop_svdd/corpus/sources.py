"""Where the real sounds come from (Debian packages), with their licences and the GM program tables."""

from __future__ import annotations

import fnmatch
import os
import shutil
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError
from .midi import sf2_presets

SF2_DIRS = tuple(
    Path(p)
    for p in os.environ.get(
        "LOOP_SVDD_SF2_PATH", "/usr/share/sounds/sf2:/usr/share/sounds/sf3:/usr/share/soundfonts"
    ).split(":")
)
# Kept for an outside evaluation: never rendered, trained or tested on by this project.
RESERVED_PACKAGES = ("freepats", "timidity", "lmms-common", "warzone2100-music")
RESERVED_MARKERS = ("freepats", "timidity", "lmms", "warzone2100")
HYDROGEN_DIR = Path(os.environ.get("LOOP_SVDD_HYDROGEN_DIR", "/usr/share/hydrogen/data/drumkits"))
SONIC_PI_DIR = Path(os.environ.get("LOOP_SVDD_SONIC_PI_DIR", "/usr/share/sonic-pi/samples"))

# name -> (file, Debian package, licence as in the package's copyright file)
SOUNDFONTS = {
    "FluidR3_GM": ("FluidR3_GM.sf2", "fluid-soundfont-gm", "MIT"),
    "TimGM6mb": ("TimGM6mb.sf2", "timgm6mb-soundfont", "GPL-2.0-only"),
    # More timbres for encoder pretraining and out-of-domain evaluation (not used by the quickstart):
    "OPL3_FM": ("OPL-3_FM_128M.sf2", "opl3-soundfont", "CC-BY-SA-4.0"),  # FM synthesis (Yamaha OPL3)
    "sf_GMbank": ("sf_GMbank.sf2", "csound-soundfont", "public-domain"),
}
# Game soundtracks (Debian packages): name -> (folder, or a zip archive such as a game's .pk3; file pattern inside
# it; package; licence).
GAME_MUSIC = {
    "hyperrogue": ("/usr/share/hyperrogue/music", "*.ogg", "hyperrogue-music", "CC-BY-SA-3.0/4.0, CC0-1.0 (per track)"),
    "singularity": ("/usr/share/games/singularity/music", "*.ogg", "singularity-music", "CC-BY-SA (see copyright)"),
    "drascula": ("/usr/share/scummvm/drascula/audio", "*.ogg", "drascula-music", "Drascula-License (free)"),
    "asc": ("/usr/share/games/asc/music", "*.mp3", "asc-music", "GPL-2.0-or-later"),
    # Heard by the distilled default encoder (loop_svdd/pretraining/distill_set.py); the four above are held out.
    "wesnoth": ("/usr/share/games/wesnoth/1.16/data/core/music", "*.ogg", "wesnoth-1.16-music", "GPL-2.0-or-later"),
    "planetblupi": ("/usr/share/planetblupi/music", "*.ogg", "planetblupi-music-ogg", "GPL-3.0-or-later"),
    "nexuiz": ("/usr/share/games/nexuiz/data/music.pk3", "sound/cdtracks/*.ogg", "nexuiz-music", "GPL-2.0-or-later"),
    "ufoai": (
        "/usr/share/games/ufoai/base/0music.pk3",
        "music/*.ogg",
        "ufoai-music",
        "GPL-2.0-or-later, CC-BY-SA-3.0 (per track)",
    ),  # fmt: skip
    "supertux": ("/usr/share/games/supertux2/music", "*/*.ogg", "supertux-data", "GPL-2.0-or-later"),
    "lincity-ng": ("/usr/share/games/lincity-ng/music/default", "*.ogg", "lincity-ng-data", "GPL-2.0-or-later"),
}
DEFAULT_SOUNDFONTS = ("FluidR3_GM", "TimGM6mb")

# Licences of the hydrogen-drumkits kits as given in /usr/share/doc/hydrogen-drumkits/copyright.
KIT_LICENCES = {
    "Audiophob": "CC0-1.0",
    "BJA_Pacific": "CC-BY-SA-3.0-US",
    "ColomboAcousticDrumkit": "GPL-2.0-or-later WITH composition exception",
    "ElectricEmpireKit": "GPL-2.0-or-later",
    "ForzeeStereo": "GPL-2.0-only",
    "Gimme A Hand 1.0": "GPL-2.0-only",
    "HardElectro1": "GPL-2.0-or-later",
    "Millo-Drums_v.1": "GPL-2.0-only",
    "Millo_MultiLayered2": "GPL-2.0-only",
    "Millo_MultiLayered3": "GPL-2.0-only",
    "The Black Pearl 1.0": "GPL-2.0-only",
    "VariBreaks": "GPL-2.0-or-later",
    "circAfrique v4": "CC-BY-SA-3.0",
    "rumpf_kit_z01_h2": "CC-BY-3.0",
}
KIT_KINDS = {  # program_family of drum-kit loops
    "Audiophob": "electronic kit",
    "ElectricEmpireKit": "electronic kit",
    "HardElectro1": "electronic kit",
    "VariBreaks": "electronic kit",
    "Gimme A Hand 1.0": "hand percussion",
    "circAfrique v4": "hand percussion",
}
# Sonic Pi loops: instrument by name (README.md of the samples: all from freesound.org, CC0).
RECORDING_INSTRUMENTS = {
    "loop_amen": "drums",
    "loop_amen_full": "drums",
    "loop_breakbeat": "drums",
    "loop_compus": "drums",
    "loop_garzul": "drums",
    "loop_industrial": "drums",
    "loop_mika": "drums",
    "loop_safari": "drums",
    "loop_tabla": "percussion",
    "loop_perc1": "percussion",
    "loop_perc2": "percussion",
    "loop_drone_g_97": "synth",
    "loop_electric": "synth",
    "loop_mehackit1": "synth",
    "loop_mehackit2": "synth",
    "loop_3d_printer": "fx",
    "loop_weirdo": "fx",
}
RECORDING_KEYS = {"loop_drone_g_97": "G major"}
SONIC_PI_LICENCE = "CC0-1.0"

GM_FAMILIES = (
    "Piano",
    "Chromatic Percussion",
    "Organ",
    "Guitar",
    "Bass",
    "Strings",
    "Ensemble",
    "Brass",
    "Reed",
    "Pipe",
    "Synth Lead",
    "Synth Pad",
    "Synth Effects",
    "Ethnic",
    "Percussive",
    "Sound Effects",
)
# Programs (0-based GM numbers) used per pitched instrument and style; drum kits are bank-128 presets.
PROGRAMS = {
    "bass": (32, 33, 34, 35, 36, 37, 38, 39),
    "guitar": (24, 25, 26, 27, 28, 29, 30),
    "keys": (0, 1, 2, 4, 5, 6, 7, 16, 17, 18, 19),
}
STRUM_PROGRAMS = (24, 25, 26, 27)
POWER_PROGRAMS = (29, 30)
DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)


def gm_family(program: int) -> str:
    return GM_FAMILIES[program // 8]


@dataclass(frozen=True)
class SoundFont:
    name: str
    path: Path
    licence: str
    package: str
    presets: frozenset[tuple[int, int]] = field(default_factory=frozenset)


def find_fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise CorpusError("fluidsynth is not installed: apt-get install fluidsynth")
    return exe


def refuse_reserved(path: str | Path) -> None:
    """Raise if `path` belongs to a package reserved for outside evaluation (`RESERVED_PACKAGES`)."""
    if any(marker in str(path).lower() for marker in RESERVED_MARKERS):
        raise CorpusError(f"{path}: from a package kept out of this project ({', '.join(RESERVED_PACKAGES)})")


def find_soundfont(name_or_path: str) -> SoundFont:
    """A soundfont by known name (``FluidR3_GM``, ``TimGM6mb``, ``OPL3_FM``, ...) or by path to an ``.sf2``."""
    refuse_reserved(name_or_path)
    if name_or_path in SOUNDFONTS:
        filename, package, licence = SOUNDFONTS[name_or_path]
        for d in SF2_DIRS:
            if (d / filename).is_file():
                path = d / filename
                break
        else:
            raise CorpusError(f"soundfont {filename} not found: apt-get install {package}")
        name = name_or_path
    else:
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(SOUNDFONTS)
            raise CorpusError(f"unknown soundfont {name_or_path!r}: give one of {known} or a path to an .sf2")
        name, package, licence = path.stem, "", "unknown (see the soundfont's documentation)"
    return SoundFont(name, path, licence, package, frozenset(sf2_presets(path)))


@dataclass(frozen=True)
class KitLayer:
    path: Path
    low: float
    high: float
    gain: float


@dataclass(frozen=True)
class Kit:
    """A Hydrogen drum kit: name, licence, kind and the layers of the instruments used for each role."""

    name: str
    licence: str
    kind: str
    author: str
    roles: dict[str, tuple[KitLayer, ...]]


ROLE_KEYWORDS = {  # role -> instrument-name keywords, best first
    "kick": ("kick", "bass drum", "bassdrum", "cajon thump", "bass"),
    "snare": ("snare", "cajon slap", "slap"),
    "hat": ("closed hh", "hat closed", "hi-hat closed", "hat cl", "hat 1 cl", "closed", "hh", "hat", "maraca", "tone"),
    "open_hat": ("open hh", "hat open", "hi-hat open", "hat op", "hat 1 op", "open"),
    "clap": ("clap",),
    "ride": ("ride",),
    "crash": ("crash",),
    "rim": ("stick", "rim"),
    "tom_hi": ("tom hi", "high tom", "tom high", "tom 1", "tom"),
    "tom_mid": ("tom mid", "middle tom", "tom 2", "tom"),
    "tom_lo": ("tom low", "low tom", "floor", "tom"),
    "perc": ("tone", "bongo", "conga", "tambourine"),
}
AVOID = ("roll", "rimshot", "choke", "swish", "semi", "dirty", "phaser", "dist", "ring")
FALLBACK = {
    "open_hat": "hat",
    "clap": "snare",
    "ride": "hat",
    "crash": "open_hat",
    "rim": "snare",
    "tom_hi": "perc",
    "tom_mid": "perc",
    "tom_lo": "perc",
}


def _text(el: ET.Element, tag: str, ns: str, default: str = "") -> str:
    found = el.find(ns + tag)
    return found.text.strip() if found is not None and found.text else default


def load_kit(kit_dir: Path) -> Kit:
    """Parse ``drumkit.xml`` and pick the instruments for kick, snare, hats, toms, cymbals."""
    root = ET.parse(kit_dir / "drumkit.xml").getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    name = kit_dir.name
    instruments: list[tuple[str, tuple[KitLayer, ...]]] = []
    for inst in root.iter(ns + "instrument"):
        gain = float(_text(inst, "gain", ns, "1") or 1) * float(_text(inst, "volume", ns, "1") or 1)
        layers = [
            KitLayer(
                kit_dir / _text(layer, "filename", ns),
                float(_text(layer, "min", ns, "0")),
                float(_text(layer, "max", ns, "1")),
                gain * float(_text(layer, "gain", ns, "1")),
            )
            for layer in inst.findall(ns + "layer")
        ]
        if not layers and _text(inst, "filename", ns):
            layers = [KitLayer(kit_dir / _text(inst, "filename", ns), 0.0, 1.0, gain)]
        layers = [layer for layer in layers if layer.path.is_file()]
        if layers and _text(inst, "isMuted", ns, "false") != "true":
            instruments.append((_text(inst, "name", ns).lower(), tuple(layers)))
    roles: dict[str, tuple[KitLayer, ...]] = {}
    for role, keywords in ROLE_KEYWORDS.items():
        for keyword in keywords:
            hits = [layers for n, layers in instruments if keyword in n]
            preferred = [layers for n, layers in instruments if keyword in n and not any(a in n for a in AVOID)]
            if preferred or hits:
                roles[role] = (preferred or hits)[0]
                break
    for role, fallback in FALLBACK.items():
        if role not in roles and fallback in roles:
            roles[role] = roles[fallback]
    if "perc" in roles:
        for role in ("tom_hi", "tom_mid", "tom_lo"):
            roles.setdefault(role, roles["perc"])
    licence = KIT_LICENCES.get(kit_dir.name) or _text(root, "license", ns) or "see hydrogen-drumkits copyright"
    return Kit(name, licence, KIT_KINDS.get(kit_dir.name, "acoustic kit"), _text(root, "author", ns), roles)


def find_kits() -> list[Path]:
    """Kit folders of ``hydrogen-drumkits`` that have kick, snare and hat instruments."""
    if not HYDROGEN_DIR.is_dir():
        raise CorpusError(f"no Hydrogen drum kits in {HYDROGEN_DIR}: apt-get install hydrogen-drumkits")
    kits = []
    for d in sorted(HYDROGEN_DIR.iterdir()):
        if (d / "drumkit.xml").is_file() and {"kick", "snare", "hat"} <= set(load_kit(d).roles):
            kits.append(d)
    return kits


def find_recordings() -> list[Path]:
    """The ``loop_*`` recordings of ``sonic-pi-samples``."""
    files = sorted(SONIC_PI_DIR.glob("loop_*.flac"))
    if not files:
        raise CorpusError(f"no Sonic Pi loops in {SONIC_PI_DIR}: apt-get install sonic-pi-samples")
    return files


def find_game_music(names: list[str] | tuple[str, ...] | None, unpack_dir: Path) -> dict[str, list[Path]]:
    """Tracks of the installed game soundtracks (`GAME_MUSIC`), by game; `names` picks some (all installed
    ones by default, each named one must be installed). Tracks inside an archive are unpacked into `unpack_dir`."""
    unknown = sorted(set(names or ()) - set(GAME_MUSIC))
    if unknown:
        raise CorpusError(f"unknown game soundtrack(s) {unknown}: known are {', '.join(GAME_MUSIC)}")
    found = {}
    for name in names or GAME_MUSIC:
        where, pattern, package, _ = GAME_MUSIC[name]
        refuse_reserved(where)
        if where.endswith((".pk3", ".zip")):
            files = _archive_tracks(Path(where), pattern, unpack_dir / name)
        else:
            files = sorted(Path(where).glob(pattern))
        if files:
            found[name] = files
        elif names:
            raise CorpusError(f"no {name} soundtrack in {where}: apt-get install {package}")
    if not found:
        packages = " ".join(v[2] for v in GAME_MUSIC.values())
        raise CorpusError(f"no game soundtrack installed: apt-get install {packages}")
    return found


def _archive_tracks(archive: Path, pattern: str, unpack_dir: Path) -> list[Path]:
    """The members of zip `archive` that match `pattern`, unpacked into `unpack_dir` (none if it is missing)."""
    if not archive.is_file():
        return []
    with zipfile.ZipFile(archive) as z:
        members = sorted(m for m in z.namelist() if fnmatch.fnmatch(m, pattern))
        for member in members:
            z.extract(member, unpack_dir)
    return [unpack_dir / m for m in members]
