"""A quick scan of a DSN as its bytes arrive: the facts a deposit is answered on at once (AEE or
ARE) before the full validation: the norm version, the nature, type and month of the
declaration, and every declared SIRET."""

from __future__ import annotations

from dataclasses import dataclass, field

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
