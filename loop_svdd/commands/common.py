"""What the commands share: the one-line error they raise, and the values and help of `--encoder`. Kept out of
`loop_svdd.cli` (the layer above) so a command never imports the dispatcher."""

from __future__ import annotations

from ..errors import LoopSVDDError, first_line, is_disk_full

# The values `--encoder` accepts (train, quickstart, embed). The random shapes must match
# configuration_loop_svdd.HTSAT_SIZES (tests/test_packaging.py checks); listed here so --help imports no torch.
RANDOM_ENCODERS = ("random-small", "random-small-deep", "random-tiny", "random-base")
ENCODER_HELP = (
    "'default' (the small HTS-AT pretrained on loops that ships with loop-svdd), a CLAP Hub id (e.g. "
    "laion/larger_clap_music), a transformers CLAP folder, a LAION-CLAP .pt file, a LoopSVDD model folder (its "
    f"encoder is reused), or one of {', '.join(RANDOM_ENCODERS)} (fixed-seed random weights, for smoke runs)"
)


class CLIError(LoopSVDDError):
    """An error to report to the user as one line, without a traceback."""


def one_line(err: BaseException, output_dir: str | None = None) -> CLIError:
    """`err` as a :class:`CLIError` of one line. A full disk names the folder being written (``output_dir``)
    and says that what was finished is kept there (every output is written whole or not at all)."""
    if is_disk_full(err):
        where = output_dir or getattr(err, "filename", None) or "the output folder"
        return CLIError(
            f"no space left on the disk of {where}; what was finished is kept there: free some space and run "
            "the same command again to go on"
        )
    return CLIError(first_line(err))
