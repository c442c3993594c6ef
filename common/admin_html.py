"""The small pieces of HTML our admin pages render beside Django's: thumbnails, progress and score bars,
palette swatches. None carries a style attribute, so the admin keeps the site's Content-Security-Policy:
fixed sizes are classes in static/css/admin.css, data-driven lengths are a <progress>/<meter> value or
SVG geometry attributes (not CSS, so the policy does not govern them)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join

from common.scores import score_band

# Each has a `cps-thumb--h<N>` class in admin.css; an unknown height is a programming error, not a silent
# unsized image.
THUMB_HEIGHTS = (40, 48, 64, 96, 180, 200, 320)
SWATCH = 22  # px, a palette swatch's side
SWATCH_GAP = 3


def thumbnail(field_file, alt: str = "", height: int = 40) -> str:
    if height not in THUMB_HEIGHTS:
        raise ValueError(f"no admin thumbnail class for a height of {height} px (admin.css has {THUMB_HEIGHTS})")
    if not field_file:
        return "—"
    return format_html(
        '<img src="{}" alt="{}" class="cps-thumb cps-thumb--h{}" loading="lazy">', field_file.url, alt, height
    )


def progress_bar(percent: int | float, css_class: str = "cps-progress") -> str:
    """A 0-100 percentage as a native <progress> (its length is the value, not a CSS width)."""
    return format_html(
        '<progress class="{}" value="{}" max="100" title="{}%">{}%</progress>', css_class, percent, percent, percent
    )


def score_meter(score: int | float) -> str:
    """A 0-100 score as a <meter> coloured by its band (common.scores, the one rule), with the number."""
    return format_html(
        '<span class="cps-quality cps-quality--{}"><meter class="cps-quality__bar" min="0" max="100" value="{}">'
        "{}</meter><b>{}</b></span>",
        score_band(score),
        score,
        score,
        score,
    )


def palette_swatches(palette: dict) -> str:
    """One SVG square per colour, its colour in the `fill` attribute, named in its tooltip."""
    if not palette:
        return ""
    step = SWATCH + SWATCH_GAP
    rects = format_html_join(
        "",
        '<rect x="{}" y="0.5" width="{}" height="{}" rx="4" fill="{}" class="cps-swatch"><title>{} {}</title></rect>',
        (
            (i * step + 0.5, SWATCH - 1, SWATCH - 1, colour, name, colour)
            for i, (name, colour) in enumerate(palette.items())
        ),
    )
    width = len(palette) * step - SWATCH_GAP
    return format_html(
        '<svg class="cps-palette" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="Colour palette">'
        "{}</svg>",
        width,
        SWATCH,
        width,
        SWATCH,
        rects,
    )
