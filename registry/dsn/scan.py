"""A quick scan of a DSN as its bytes arrive: the facts a deposit is answered on at once (AEE or
ARE) before the full validation: the norm version, the nature, type and month of the
declaration, and every declared SIRET; and the rules that refuse a file as a whole (its ARE)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from registry.dsn.deposit_store import NewDeposit, Receipt
from registry.dsn.norm import supported_versions

_WATCHED = (b"S10.G00.00.006", b"S20.G00.05.001", b"S20.G00.05.002", b"S20.G00.05.005",
            b"S21.G00.06.001", b"S21.G00.11.001")  # fmt: skip
# More declared SIRETs than this and the scan stops collecting them (and says so).
MAX_SIRETS = 10_000


@dataclass
class DepositScan:
    """Feed it the file's chunks in order, then `finish`."""

    versions: list[str] = field(default_factory=list)
    nature: str = ""
    type: str = ""
    month: str = ""
    sirets: list[str] = field(default_factory=list)
    lines: int = 0
    starts_with_rubric: bool | None = None
    too_many_sirets: bool = False
    _siren: str = ""
    _rest: bytes = b""

    def feed(self, chunk: bytes) -> None:
        """Takes the next bytes of the file."""
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        if len(self._rest) > 4096:  # no line is that long: not a DSN; keep memory bounded
            self._rest = self._rest[-4096:]
        for line in lines:
            self._line(line)

    def finish(self) -> DepositScan:
        """Reads the last line; returns self."""
        if self._rest:
            self._line(self._rest)
            self._rest = b""
        return self

    def _line(self, line: bytes) -> None:
        if not line.strip():
            return
        self.lines += 1
        if self.starts_with_rubric is None:
            self.starts_with_rubric = line[:1] == b"S" and line[14:16] == b",'"
        prefix = line[:14]
        if prefix not in _WATCHED:
            return
        value = line[16:].rstrip(b"\r\n")[:-1].decode("iso-8859-1")
        if prefix == b"S10.G00.00.006":
            self.versions.append(value)
        elif prefix == b"S20.G00.05.001" and not self.nature:
            self.nature = value
        elif prefix == b"S20.G00.05.002" and not self.type:
            self.type = value
        elif prefix == b"S20.G00.05.005" and not self.month:
            self.month = value
        elif prefix == b"S21.G00.06.001":
            self._siren = value
        elif prefix == b"S21.G00.11.001":
            siret = self._siren + value
            if siret not in self.sirets:
                if len(self.sirets) >= MAX_SIRETS:
                    self.too_many_sirets = True
                else:
                    self.sirets.append(siret)

    def refusal(self, size: int, entitled: Callable[[str], bool], right: str) -> Refusal | None:
        """Why the file of `size` bytes is refused as a whole (its ARE), or None when it is
        taken (AEE); `entitled` says whether the depositor holds `right` over a SIRET."""
        if size == 0:
            return Refusal("EMPTY_FILE", "the file is empty")
        if not self.starts_with_rubric or not self.versions:
            return Refusal(
                "NOT_A_DSN", "the file is not a NEODeS DSN (no S10.G00.00.006 norm version)"
            )
        unsupported = sorted(set(self.versions) - set(supported_versions()))
        if unsupported:
            return Refusal("UNSUPPORTED_VERSION", (
                f"norm version {unsupported[0]} is not supported; one of "
                f"{', '.join(supported_versions())}"
            ))  # fmt: skip
        if not self.sirets:
            return Refusal(
                "NO_ESTABLISHMENT", "the file declares no establishment (S21.G00.06/S21.G00.11)"
            )
        if self.too_many_sirets:
            return Refusal("TOO_MANY_ESTABLISHMENTS", "the file declares too many establishments")
        outside = [siret for siret in self.sirets if not entitled(siret)]
        if outside:
            return Refusal(
                "NOT_ENTITLED", f"the token does not grant {right} over establishment {outside[0]}"
            )
        return None

    def described(self, new: NewDeposit, refusal: Refusal | None) -> NewDeposit:
        """The deposit as the scan found it, with its receipt: an ARE when refused."""
        return replace(
            new, receipt=Receipt.ARE if refusal else Receipt.AEE,
            rejection_code=refusal.code if refusal else "",
            rejection_message=refusal.message if refusal else "",
            norm_version=self.versions[0] if self.versions else "", nature=self.nature,
            type=self.type, month=self.month, sirets=tuple(self.sirets),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a file is refused as a whole: a stable code (the ARE's) and a sentence."""

    code: str
    message: str
