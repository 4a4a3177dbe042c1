"""A picture of landing order: CL number against the order CLs landed in, one colour per row.

Why: Gerrit numbers a change at upload, so in a real history a row's CLs
are scattered over numbers that other rows use too.  The table lists them;
this picture shows the pattern at a glance: a clean history is a staircase
of colours, a CL that landed late is a dot of one colour among another's.

Why a writer of our own: the picture is committed next to DEPLOYING.md and
checked by ``--check``, so the same rows must give the same bytes on every
machine and every version of every dependency.  Plotting libraries embed
version strings, dates or ids and pull in a large dependency for a chart of
dots, lines and text.  The SVG here uses only elements every browser and
Gitiles/GitHub's image view render: no script, no external font or link.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from rollsafe.table._rows import Row

if TYPE_CHECKING:
    from rollsafe.history import CodeVersion

WIDTH, HEIGHT = 960, 540
LEFT, RIGHT, TOP, BOTTOM = 72, 24, 88, 64
#: A generous average glyph width at 12 px, to lay the legend out without measuring text.
CHAR_WIDTH = 7.0
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"

#: Tableau 10: distinct hues that stay apart for most colour-blind readers; rows cycle.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#79706e",
)

_Scale = Callable[[float], float]


@dataclass(frozen=True)
class _Point:
    x: float
    y: float
    row: int
    misplaced: bool


def colour(row: int) -> str:
    """The colour of a row: neighbours always differ."""
    return PALETTE[row % len(PALETTE)]


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering ``[low, high]``."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(value)
        value = first + step * len(ticks)
    return ticks


def _num(value: float) -> str:
    """Coordinates with one decimal, ``12`` rather than ``12.0``: short and deterministic."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _date(version: CodeVersion) -> str:
    return version.date.astimezone(UTC).strftime("%Y-%m-%d")


def render_svg(rows: Sequence[Row]) -> str:
    """The picture of ``rows`` as SVG text (the same rows give the same bytes).

    The open row shows its first CL only: the CLs that keep landing in it
    must not make the committed picture stale, as they leave the table alone.
    """
    shown = [row.versions[:1] if row.open else row.versions for row in rows]
    versions = [v for group in shown for v in group]
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}" font-size="12" role="img" '
        'aria-labelledby="title desc">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    if not versions:
        out += [
            '<title id="title">Landing order of CLs</title>',
            '<desc id="desc">No schema has shipped yet.</desc>',
            f'<text x="{WIDTH // 2}" y="{HEIGHT // 2}" text-anchor="middle" fill="#333333">'
            "No schema has shipped yet: no CL has a migration.</text>",
            "</svg>",
        ]
        return "\n".join(out) + "\n"
    numbered = all(v.number is not None for v in versions)
    values = [
        float(v.number) if numbered and v.number is not None else float(i + 1)
        for i, v in enumerate(versions)
    ]
    low, high = min(values), max(values)
    pad = max(1.0, (high - low) * 0.03)
    low, high = low - pad, high + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    count = len(versions)

    def x_of(index: float) -> float:
        return LEFT + (index + 0.5) * plot_w / count

    def y_of(value: float) -> float:
        return TOP + plot_h - (value - low) / (high - low) * plot_h

    misplaced = {
        entry.version.commit
        for row in rows
        for entry in row.out_of_order
        if not rows[entry.row].open
    }
    title = f"Landing order of {count} CLs in {len(rows)} row{'' if len(rows) == 1 else 's'}" + (
        f", {len(misplaced)} out of order" if misplaced else ""
    )
    out += [
        f'<title id="title">{escape(title)}</title>',
        '<desc id="desc">Each dot is a CL: its position along the bottom is the order it '
        "landed in, its height its number. Colours are rows of the DEPLOYING table; dashed "
        "lines are row boundaries; dots with a dark ring lie in another row's CL range.</desc>",
        f'<text x="{LEFT}" y="24" font-size="15" font-weight="bold" fill="#222222">'
        f"{escape(title)}</text>",
    ]
    out += _legend(rows, ringed=bool(misplaced))
    out += _axes(versions, numbered, low, high, x_of, y_of)
    out += _boundaries(rows, shown, x_of)
    points: list[_Point] = []
    index = 0
    for row, group in zip(rows, shown, strict=True):
        for version in group:
            points.append(
                _Point(x_of(index), y_of(values[index]), row.id, version.commit in misplaced)
            )
            index += 1
    out += _dots(points, count)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(rows: Sequence[Row], *, ringed: bool) -> list[str]:
    """One swatch per row when they fit on two lines, else a line saying how to read colours.

    The ring is explained only when some CL wears one.
    """
    entries = [
        (colour(row.id), f"row {row.id}: schema {'none' if row.schema is None else row.schema}")
        for row in rows
    ]
    placed: list[tuple[float, int, str, str]] = []
    x, line = float(LEFT), 0
    if ringed:
        entries.append(("", "in another row's CL range"))
    for fill, label in entries:
        width = 14 + CHAR_WIDTH * len(label)
        if x + width > WIDTH - RIGHT and x > LEFT:
            x, line = float(LEFT), line + 1
        placed.append((x, line, fill, label))
        x += width + 16
    if line > 1:
        return [
            f'<text x="{LEFT}" y="50" fill="#444444">Colours cycle by row; row ids stand above '
            "the dashed boundaries; a dark ring: the CL lies in another row's CL range.</text>"
        ]
    parts: list[str] = []
    for x, line, fill, label in placed:
        y = 46 + 16 * line
        if fill:
            parts.append(f'<rect x="{_num(x)}" y="{y - 5}" width="10" height="10" fill="{fill}"/>')
        else:
            parts.append(
                f'<circle cx="{_num(x + 5)}" cy="{y}" r="4" fill="#ffffff" stroke="#222222" '
                'stroke-width="1.5"/>'
            )
        parts.append(f'<text x="{_num(x + 14)}" y="{y + 4}" fill="#333333">{escape(label)}</text>')
    return parts


def _axes(
    versions: Sequence[CodeVersion],
    numbered: bool,
    low: float,
    high: float,
    x_of: _Scale,
    y_of: _Scale,
) -> list[str]:
    """Grid, ticks and labels: CL numbers up the side, landing dates along the bottom."""
    bottom, right = HEIGHT - BOTTOM, WIDTH - RIGHT
    parts = [
        f'<rect x="{LEFT}" y="{TOP}" width="{WIDTH - LEFT - RIGHT}" '
        f'height="{HEIGHT - TOP - BOTTOM}" fill="none" stroke="#999999"/>'
    ]
    for tick in nice_ticks(low, high):
        y = _num(y_of(tick))
        parts.append(
            f'<line x1="{LEFT}" y1="{y}" x2="{right}" y2="{y}" stroke="#e6e6e6"/>'
            f'<text x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end" fill="#444444">'
            f"{tick:.0f}</text>"
        )
    count = len(versions)
    slots = min(count, 7)
    shown: set[str] = set()
    for slot in range(slots):
        index = round(slot * (count - 1) / max(1, slots - 1))
        label = _date(versions[index])
        if label in shown:
            continue
        shown.add(label)
        x = _num(x_of(index))
        anchor = "start" if slot == 0 and slots > 1 else "end" if slot == slots - 1 else "middle"
        parts.append(
            f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 5}" stroke="#999999"/>'
            f'<text x="{x}" y="{bottom + 18}" text-anchor="{anchor}" fill="#444444">'
            f"{label}</text>"
        )
    middle = _num(LEFT + (WIDTH - LEFT - RIGHT) / 2)
    parts.append(
        f'<text x="{middle}" y="{HEIGHT - 14}" text-anchor="middle" fill="#222222">'
        "landing order (date landed, UTC) \u2192</text>"
    )
    label = "CL number" if numbered else "code version (landing order)"
    parts.append(
        f'<text transform="translate(18 {_num(TOP + (HEIGHT - TOP - BOTTOM) / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="#222222">{label}</text>'
    )
    return parts


def _boundaries(
    rows: Sequence[Row], shown: Sequence[Sequence[CodeVersion]], x_of: _Scale
) -> list[str]:
    """A dashed vertical line where each row starts, and the row id above it when it fits."""
    parts: list[str] = []
    index = 0
    last_label = -math.inf
    for row, group in zip(rows, shown, strict=True):
        x = x_of(index - 0.5)
        if row.id > 0:
            parts.append(
                f'<line x1="{_num(x)}" y1="{TOP}" x2="{_num(x)}" y2="{HEIGHT - BOTTOM}" '
                'stroke="#666666" stroke-dasharray="4 3"/>'
            )
        centre = x_of(index - 0.5 + len(group) / 2)
        text = str(row.id)
        if centre - last_label >= CHAR_WIDTH * len(text) + 6:
            parts.append(
                f'<text x="{_num(centre)}" y="{TOP - 6}" text-anchor="middle" font-size="11" '
                f'fill="{colour(row.id)}" font-weight="bold">{text}</text>'
            )
            last_label = centre
        index += len(group)
    return parts


def _dots(points: Sequence[_Point], count: int) -> list[str]:
    """Every CL as a round dot, one path per row (zero-length segments with round caps).

    Why paths: a circle element per CL would make a history of 50,000 CLs a
    multi-megabyte file; a path holds a dot in a dozen bytes, and dots that
    fall on the same half pixel are drawn once.  Out-of-order CLs get a dark
    ring drawn under them first.
    """
    size = 8.0 if count <= 50 else 6.0 if count <= 200 else 4.5 if count <= 2000 else 3.0
    parts: list[str] = []
    ring = _path_data(p for p in points if p.misplaced)
    if ring:
        parts.append(
            f'<path d="{ring}" stroke="#222222" stroke-width="{_num(size + 2.5)}" '
            'stroke-linecap="round" fill="none"/>'
        )
    rows = sorted({p.row for p in points})
    for row in rows:
        data = _path_data(p for p in points if p.row == row)
        parts.append(
            f'<path d="{data}" stroke="{colour(row)}" stroke-width="{_num(size)}" '
            'stroke-linecap="round" fill="none"/>'
        )
    return parts


def _path_data(points: Iterable[_Point]) -> str:
    seen: set[tuple[float, float]] = set()
    moves: list[str] = []
    for point in points:
        key = (round(point.x * 2) / 2, round(point.y * 2) / 2)
        if key in seen:
            continue
        seen.add(key)
        moves.append(f"M{_num(key[0])} {_num(key[1])}h0")
    return "".join(moves)
