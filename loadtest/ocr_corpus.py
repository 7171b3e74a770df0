#!/usr/bin/env python3
"""Deterministic generator of synthetic MyKad-like card images and Malaysian receipt images
with known truth, for the OCR tests and the OCR accuracy benchmark.

    python3 loadtest/ocr_corpus.py --out DIR [--cards N] [--receipts N] [--seed S] [--hard] [--turned]

Writes DIR/card-0001.jpg ..., DIR/receipt-0001.jpg ... and DIR/truth.json, a list of
{"file", "kind", ...truth}. The same seed always gives the same images. Fonts come from
Debian's fonts-dejavu-core; Pillow from PyPI. "--hard" adds rotation up to 8 degrees,
stronger blur, noise, uneven light and lower JPEG quality; the default is a phone photo of a
card on a desk: slight rotation, mild blur and noise, JPEG artefacts. "--turned" also turns
every photo by 90, 180 or 270 degrees (a phone held sideways or upside down; "turned" in the
truth), drawn from a separate random stream so the images are otherwise the same.

    python3 loadtest/ocr_corpus.py --out DIR --phone [--cards N] [--receipts N] [--refuse N]
                                   [--long F] [--seed S] [--turned]

"--phone" makes realistic phone photos of each card or receipt lying on a table instead: a
textured table top (light or dark wood, white or grey laminate, white or dark granite, cloth,
red/white or blue/white checked tablecloth: "background"; the first receipt always lies on
white granite), 0-3 objects around the document (pen, coins, a phone: "clutter"), the document
covering roughly a third to two thirds of the frame, turned up to 15 degrees on the table
("rotation", counter-clockwise) and seen by a camera tilted 5-25 degrees ("perspective",
"tilt_direction": the far side, degrees clockwise from the +x axis of the image) with a small
shear. Receipts are curled half the time ("curled"), printed with faded thermal ink half the
time ("faded": the ink's grey level, sometimes with a paler "faded_band" of rows), and a share
F of them (--long, default 0.4) have 8-14 items ("items", "long"). Light: a warm, cool or
neutral cast ("light"), brightness 0.75-1.1, vignette, glare on ~40 % ("glare": its peak
strength, limited to 40 % over the IC number / TOTAL line) and a hand's shadow on ~30 %
("hand_shadow"). Camera: blur 0.3-1.0 px, sensor noise, long side 800-1600 px ("size"), JPEG
quality 35-70 ("quality"), re-encoded once more at 35-70 in 30 % ("requality", a messenger
app). The document's scale is chosen so the IC number's digits stay at least 15 px tall
("text_px"; receipts: TOTAL line 12 px, all lines 11 px). Truth keeps the usual keys, with
"phone": true, "hard": false, "angle" = "rotation", and "corners": the document's corners in
the image, [[x, y]] top-left, top-right, bottom-right, bottom-left of the document as printed
(a card's corners are those of its rectangle, before rounding). "--refuse N" adds
refuse-0001.jpg ... that a reader must refuse, {"file", "kind": "refuse", "case", ...}, the
cases cycling over "blank_card" (the card's background, maybe its titles, no number, no
name), "screen_moire" (a card shown on a phone screen: bezel, moire, RGB subpixels; "ic" is
the number shown) and "number_covered" (a thumb or a sticker over the IC number, "cover";
"ic" is the hidden number). Phone mode draws all photography from its own random streams.
"--hard" has no effect with "--phone".
"""

import argparse
import colorsys
import datetime
import io
import json
import math
import os
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansCondensed.ttf",
         "DejaVuSansCondensed-Bold.ttf", "DejaVuSerif.ttf"]
MONO = ["DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf"]

# Place-of-birth codes (FACTS.md): every state code and the foreign ones.
STATE_CODES = {
    "JOHOR": [1, 21, 22, 23, 24], "KEDAH": [2, 25, 26, 27], "KELANTAN": [3, 28, 29],
    "MELAKA": [4, 30], "NEGERI SEMBILAN": [5, 31, 59], "PAHANG": [6, 32, 33],
    "PULAU PINANG": [7, 34, 35], "PERAK": [8, 36, 37, 38, 39], "PERLIS": [9, 40],
    "SELANGOR": [10, 41, 42, 43, 44], "TERENGGANU": [11, 45, 46], "SABAH": [12, 47, 48, 49],
    "SARAWAK": [13, 50, 51, 52, 53], "W.P. KUALA LUMPUR": [14, 54, 55, 56, 57],
    "W.P. LABUAN": [15, 58], "W.P. PUTRAJAYA": [16],
}
FOREIGN_CODES = [60, 61, 62, 63, 64, 65, 66, 67, 68, 71, 72, 74, 75, 76, 77, 78, 79, 82, 83,
                 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 98, 99]
GIVEN = ["SITI", "NUR", "AHMAD", "MUHAMMAD", "TAN", "LIM", "WONG", "RAJ", "PRIYA", "AISYAH",
         "FARID", "MEI LING", "KUMAR", "HAFIZ", "NURUL", "CHONG", "DEVI", "IZZAT", "LEE", "ONG"]
FAMILY = ["BINTI ABDULLAH", "BIN ISMAIL", "WEI MING", "AH KOW", "A/L MUTHU", "A/P RAMASAMY",
          "BINTI HASSAN", "BIN OTHMAN", "SIEW LAN", "KAH HOE", "BINTI YUSOF", "BIN AHMAD"]
STREETS = ["JALAN SS 2/24", "JALAN AMPANG", "LORONG MAWAR 3", "JALAN TUN RAZAK",
           "JALAN BUNGA RAYA", "JALAN KENANGA 5", "LORONG DAMAI 2", "JALAN MERDEKA"]
AREAS = ["TAMAN BAHAGIA", "TAMAN MELATI", "KAMPUNG BARU", "TAMAN SRI MUDA", "BANDAR BARU"]
CITIES = [("47300", "PETALING JAYA", "SELANGOR"), ("50450", "KUALA LUMPUR", "W.P. KUALA LUMPUR"),
          ("80100", "JOHOR BAHRU", "JOHOR"), ("10200", "GEORGE TOWN", "PULAU PINANG"),
          ("30000", "IPOH", "PERAK"), ("88000", "KOTA KINABALU", "SABAH"),
          ("93000", "KUCHING", "SARAWAK"), ("25000", "KUANTAN", "PAHANG")]
MERCHANTS = ["AEON BIG MID VALLEY", "99 SPEEDMART", "MYDIN MALL", "GUARDIAN PHARMACY",
             "KEDAI RUNCIT AH SENG", "MR DIY", "WATSONS", "LOTUS'S KEPONG"]
ITEMS = ["BERAS 5KG", "MINYAK MASAK", "GULA 1KG", "TEH BOH", "MILO 1KG", "SABUN", "ROTI",
         "TELUR GRED A", "SUSU SEGAR", "MEE SEDAP", "KICAP", "AIR MINERAL"]


def font(name, size):
    return ImageFont.truetype(os.path.join(FONT_DIR, name), size)


def valid_ic(rng):
    while True:
        born = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(0, 365 * 55))
        if rng.random() < 0.8:
            state = rng.choice(list(STATE_CODES))
            code = rng.choice(STATE_CODES[state])
        else:
            state, code = None, rng.choice(FOREIGN_CODES)
        serial = rng.randrange(0, 10000)
        digits = f"{born:%y%m%d}{code:02d}{serial:04d}"
        return digits, born, state


TURNS = None  # set by --turned: a random stream of quarter turns


def photo_effects(img, rng, hard):
    """Phone-photo look: a desk around the document, rotation, blur, noise, light, JPEG."""
    w, h = img.size
    pad = int(max(w, h) * 0.12)
    desk = Image.new("RGB", (w + 2 * pad, h + 2 * pad), tuple(rng.randrange(60, 140) for _ in range(3)))
    desk.paste(img, (pad, pad))
    angle = rng.uniform(-8, 8) if hard else rng.uniform(-2, 2)
    desk = desk.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=desk.getpixel((1, 1)))
    turn = 0
    if TURNS is not None:
        turn = TURNS.choice([90, 180, 270])
        desk = desk.rotate(turn, expand=True)
    if hard:
        # Uneven light: darken one side.
        shade = Image.linear_gradient("L").resize(desk.size).rotate(rng.choice([0, 90, 180, 270]))
        dark = Image.new("RGB", desk.size, (0, 0, 0))
        desk = Image.composite(desk, dark, shade.point(lambda v: 150 + v * 105 // 255))
    desk = desk.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 1.6) if hard else rng.uniform(0.2, 0.7)))
    noise = Image.effect_noise(desk.size, 18 if hard else 8).convert("RGB")
    desk = Image.blend(desk, noise, 0.08 if hard else 0.04)
    buf = io.BytesIO()
    desk.save(buf, "JPEG", quality=rng.randrange(45, 65) if hard else rng.randrange(70, 90))
    return buf.getvalue(), (angle, turn)


def card_face(w, h):
    """The blank card: pale blue with a faint guilloche-like line pattern."""
    img = Image.new("RGB", (w, h), (214, 228, 240))
    d = ImageDraw.Draw(img)
    for y in range(0, h, 6):  # a faint background pattern like the card's guilloche
        d.line([(0, y), (w, y + 40)], fill=(200, 216, 232), width=1)
    return img, d


def draw_card(rng):
    """Draws a card; returns (image, facts, box of the IC number line in the image)."""
    digits, born, state = valid_ic(rng)
    number = f"{digits[:6]}-{digits[6:8]}-{digits[8:]}"
    name = f"{rng.choice(GIVEN)} {rng.choice(GIVEN)} {rng.choice(FAMILY)}"
    postcode, city, home_state = rng.choice(CITIES)
    address = [f"NO {rng.randrange(1, 200)} {rng.choice(STREETS)}", rng.choice(AREAS),
               f"{postcode} {city}", home_state]
    w, h = 1012, 638  # ID-1 card at ~300 dpi scaled down
    img, d = card_face(w, h)
    f_title = font(rng.choice(FONTS[:2]), 34)
    f_text = font(rng.choice(FONTS), 30)
    f_num = font(rng.choice(["DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf"]), 44)
    d.text((40, 24), "KAD PENGENALAN", font=f_title, fill=(20, 30, 90))
    d.text((640, 24), "MyKad", font=f_title, fill=(160, 20, 30))
    d.text((40, 66), "MALAYSIA", font=f_text, fill=(20, 30, 90))
    d.text((40, 100), "IDENTITY CARD", font=font(FONTS[0], 22), fill=(20, 30, 90))
    d.text((40, 150), number, font=f_num, fill=(10, 10, 10))
    ic_box = d.textbbox((40, 150), number, font=f_num)
    d.rectangle([700, 150, 960, 470], fill=(180, 190, 205))  # photo area
    y = 300
    for line in wrap(name, 26):
        d.text((40, y), line, font=f_text, fill=(10, 10, 10))
        y += 38
    y += 8
    for line in address:
        d.text((40, y), line, font=f_text, fill=(10, 10, 10))
        y += 36
    male = int(digits[-1]) % 2 == 1
    d.text((700, 500), "WARGANEGARA", font=f_text, fill=(10, 10, 10))
    d.text((700, 540), "LELAKI" if male else "PEREMPUAN", font=f_text, fill=(10, 10, 10))
    facts = {"kind": "ic", "ic": digits, "name": name, "birth_date": born.isoformat(),
             "gender": "male" if male else "female", "place_of_birth_state": state,
             "postcode": postcode}
    return img, facts, ic_box


def card(rng, hard):
    img, facts, _ = draw_card(rng)
    data, (angle, turn) = photo_effects(img, rng, hard)
    truth = {**facts, "hard": hard, "angle": round(angle, 2), "turned": turn}
    return data, truth


def wrap(text, width):
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line]


def draw_receipt(rng, n_items=(2, 7), ink=(25, 25, 25)):
    """Draws a receipt; returns (image, facts, box of the TOTAL line, number of lines)."""
    merchant = rng.choice(MERCHANTS)
    day = datetime.date(2024, 3, 1) + datetime.timedelta(days=rng.randrange(0, 600))
    items = []
    for _ in range(rng.randrange(*n_items)):
        qty = rng.randrange(1, 4)
        unit = rng.randrange(150, 4500)
        items.append((rng.choice(ITEMS), qty, unit, qty * unit))
    subtotal = sum(i[3] for i in items)
    sst = round(subtotal * 0.06)
    raw_total = subtotal + sst
    rounded = raw_total - raw_total % 5 + (5 if raw_total % 5 >= 3 else 0)
    rounding = rounded - raw_total
    cash = ((rounded + 999) // 1000) * 1000
    money = lambda sen: f"{sen // 100}.{sen % 100:02d}"
    lines = [merchant, f"NO {rng.randrange(1, 99)} JALAN {rng.choice(['IPOH', 'KLANG', 'PUDU'])}",
             f"SST ID: W10-{rng.randrange(1000, 9999)}-{rng.randrange(10000000, 99999999)}", "",
             f"RECEIPT NO: {rng.randrange(100000, 999999)}",
             f"DATE: {day:%d/%m/%Y}  {rng.randrange(8, 22):02d}:{rng.randrange(0, 60):02d}", "-" * 32]
    for name, qty, unit, amount in items:
        lines.append(f"{name}")
        lines.append(f"  {qty} X {money(unit):>7} {money(amount):>10}")
    lines += ["-" * 32, f"SUBTOTAL {money(subtotal):>23}", f"SST 6% {money(sst):>25}",
              f"ROUNDING {money(rounding) if rounding >= 0 else '-' + money(-rounding):>23}",
              f"TOTAL {money(rounded):>26}", f"CASH {money(cash):>27}",
              f"CHANGE {money(cash - rounded):>25}", "", "THANK YOU, PLEASE COME AGAIN"]
    f = font(rng.choice(MONO), 26)
    w, h = 560, 40 + 34 * len(lines)
    img = Image.new("RGB", (w, h), (250, 250, 246))
    d = ImageDraw.Draw(img)
    total_box = None
    for i, line in enumerate(lines):
        d.text((20, 20 + 34 * i), line, font=f, fill=ink)
        if line.startswith("TOTAL "):
            total_box = d.textbbox((20, 20 + 34 * i), line, font=f)
    facts = {"kind": "receipt", "total": money(rounded), "date": day.isoformat(),
             "merchant": merchant}
    return img, facts, total_box, len(items)


def receipt(rng, hard):
    img, facts, _, _ = draw_receipt(rng)
    data, (angle, turn) = photo_effects(img, rng, hard)
    truth = {**facts, "hard": hard, "angle": round(angle, 2), "turned": turn}
    return data, truth


# ---------------------------------------------------------------------------------------------
# --phone: a phone photo of the document lying on a table. Everything here draws from its own
# random stream, so the default modes above are untouched.

PX_PER_MM = {"card": 1012 / 85.6, "receipt": 560 / 80.0}  # document pixels per millimetre
BACKGROUNDS = ["light_wood", "dark_wood", "white_laminate", "grey_laminate", "white_granite",
               "dark_granite", "cloth", "checked_red", "checked_blue"]


def solve_linear(a, b):
    """Solves a x = b by Gaussian elimination with partial pivoting (pure Python)."""
    n = len(b)
    m = [list(row) + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[piv] = m[piv], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for c in range(col, n + 1):
                    m[r][c] -= f * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def homography(src, dst):
    """The 8 coefficients (a..h) of the projective map taking the 4 points src to dst:
    X = (a x + b y + c) / (g x + h y + 1), Y = (d x + e y + f) / (g x + h y + 1). Given
    (output points, input points) these are Image.transform's PERSPECTIVE coefficients."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -x * u, -y * u])
        b.append(u)
        a.append([0, 0, 0, x, y, 1, -x * v, -y * v])
        b.append(v)
    return solve_linear(a, b)


def apply_h(h, pts):
    a, b, c, d, e, f, g, k = h
    out = []
    for x, y in pts:
        w = g * x + k * y + 1
        out.append(((a * x + b * y + c) / w, (d * x + e * y + f) / w))
    return out


def affine_then_h(aff, h):
    """Coefficients of (affine aff) after (projective h); aff = (p, q, r, s, t, u) maps
    (x, y) to (p x + q y + r, s x + t y + u)."""
    a, b, c, d, e, f, g, k = h
    p, q, r, s, t, u = aff
    return [p * a + q * d + r * g, p * b + q * e + r * k, p * c + q * f + r,
            s * a + t * d + u * g, s * b + t * e + u * k, s * c + t * f + u, g, k]


def dist(p, q):
    return math.hypot(p[0] - q[0], p[1] - q[1])


def rand_l(rng, w, h):
    """Uniform noise as an L image, from our own random stream (deterministic)."""
    w, h = max(1, int(w)), max(1, int(h))
    return Image.frombytes("L", (w, h), rng.randbytes(w * h))


def smooth_noise(rng, w, h, cell):
    """Soft blobs about `cell` pixels across, stretched to the full contrast range."""
    small = rand_l(rng, w / max(cell, 1) + 3, h / max(cell, 1) + 3)
    return ImageOps.autocontrast(small.resize((w, h), Image.BICUBIC), cutoff=1)


def lut(f):
    return [max(0, min(255, int(round(f(v))))) for v in range(256)]


def row_image(values, h):
    """A 1-pixel-high row of L values stretched to h rows (vertical stripes)."""
    return Image.frombytes("L", (len(values), 1), bytes(values)).resize((len(values), h), Image.NEAREST)


def wave_columns(img, rng, amp, period):
    """Shifts rows sideways along a sine (wavy wood grain) using an Image.MESH warp."""
    w, h = img.size
    mesh, n, ph = [], 24, rng.uniform(0, 6.3)
    for i in range(n):
        y0, y1 = h * i // n, h * (i + 1) // n
        o0 = amp * math.sin(y0 / period + ph)
        o1 = amp * math.sin(y1 / period + ph)
        mesh.append(((0, y0, w, y1), (-o0, y0, -o1, y1, w - o1, y1, w - o0, y0)))
    return img.transform((w, h), Image.MESH, mesh, Image.BILINEAR, fillcolor=128)


def weave(rng, w, h, pitch):
    """Fine woven-thread texture (L), threads `pitch` pixels apart."""
    pitch = max(2, int(round(pitch)))
    vals = [215 + (40 if (x % pitch) < pitch / 2 else 0) for x in range(w)]
    v = row_image(vals, h)
    vals = [215 + (40 if (y % pitch) < pitch / 2 else 0) for y in range(h)]
    hz = row_image(vals, w).transpose(Image.ROTATE_90)
    fibre = rand_l(rng, w, h).filter(ImageFilter.GaussianBlur(0.6))
    return Image.blend(ImageChops.multiply(v, hz), fibre, 0.25)


def folds(rng, w, h, cell, low):
    """Soft folds or wrinkles: an L multiplier image between `low` and 255."""
    return smooth_noise(rng, w, h, cell).point(lut(lambda v: low + (255 - low) * v / 255))


def table_texture(rng, kind, w, h, ppm):
    """A textured table top, w x h texture pixels, ppm texture pixels per millimetre."""
    if kind in ("light_wood", "dark_wood"):
        fine = rand_l(rng, w / max(1.5, 0.7 * ppm), 1).resize((w, h), Image.BICUBIC)
        broad = rand_l(rng, w / max(4, 6 * ppm), 1).resize((w, h), Image.BICUBIC)
        grain = wave_columns(Image.blend(fine, broad, 0.55), rng, rng.uniform(1, 4) * ppm,
                             rng.uniform(30, 90) * ppm)
        streak = rand_l(rng, w / max(2, 2 * ppm), h / max(8, 60 * ppm) + 2).resize((w, h), Image.BICUBIC)
        g = ImageOps.autocontrast(Image.blend(grain, streak, 0.35), cutoff=1)
        d = ImageDraw.Draw(g)
        plank = rng.uniform(90, 200) * ppm
        x = rng.uniform(0, plank)
        while x < w:  # planks: a tone per plank, a dark seam between them, an end joint
            tone = rng.uniform(0.8, 1.1)
            box = (int(x), 0, min(w, int(x + plank)), h)
            if box[2] > box[0]:
                g.paste(g.crop(box).point(lut(lambda v: v * tone)), box[:2])
                jy = rng.uniform(0, h)
                d.line([(box[0], jy), (box[2], jy)], fill=20, width=max(1, int(0.4 * ppm)))
            d.line([(x, 0), (x, h)], fill=10, width=max(1, int(0.5 * ppm)))
            x += plank
        if kind == "light_wood":
            lo = (rng.randrange(140, 175), rng.randrange(95, 120), rng.randrange(55, 75))
            hi = (rng.randrange(215, 240), rng.randrange(175, 200), rng.randrange(120, 150))
        else:
            lo = (rng.randrange(30, 50), rng.randrange(16, 28), rng.randrange(8, 16))
            hi = (rng.randrange(100, 130), rng.randrange(62, 80), rng.randrange(34, 48))
        img = ImageOps.colorize(g, lo, hi)
    elif kind in ("white_laminate", "grey_laminate"):
        base = rng.randrange(228, 245) if kind == "white_laminate" else rng.randrange(150, 200)
        tint = [rng.randrange(-4, 5) for _ in range(3)]
        mott = smooth_noise(rng, w, h, 25 * ppm)
        fleck = rand_l(rng, w / max(1, 0.5 * ppm), h / max(1, 0.5 * ppm)).resize((w, h), Image.BILINEAR)
        g = Image.blend(mott, fleck, 0.5)
        img = ImageOps.colorize(g, tuple(base - 14 + t for t in tint),
                                tuple(min(255, base + 8 + t) for t in tint))
    elif kind in ("white_granite", "dark_granite"):
        cell = max(1.0, rng.uniform(0.35, 0.8) * ppm)
        clouds = Image.blend(smooth_noise(rng, w, h, 8 * ppm), smooth_noise(rng, w, h, 2.5 * ppm), 0.5)
        grains = ImageOps.autocontrast(Image.blend(
            rand_l(rng, w / cell, h / cell).resize((w, h), Image.BILINEAR),
            rand_l(rng, w / cell / 2.5, h / cell / 2.5).resize((w, h), Image.BICUBIC), 0.5), cutoff=0.5)
        grains2 = rand_l(rng, w / cell, h / cell).resize((w, h), Image.BILINEAR)
        if kind == "white_granite":
            img = ImageOps.colorize(clouds, (196, 194, 190), (240, 238, 234))
            dark, other = (rng.randrange(30, 70),) * 3, (rng.randrange(150, 175), 135, 120)
        else:
            img = ImageOps.colorize(clouds, (22, 22, 24), (70, 68, 68))
            dark, other = (rng.randrange(175, 225),) * 3, (120, 95, 80)
        cut = rng.randrange(175, 205)
        img = Image.composite(Image.new("RGB", (w, h), dark), img,
                              grains.point(lut(lambda v: 255 if v > cut else 120 if v > cut - 12 else 0)))
        img = Image.composite(Image.new("RGB", (w, h), other), img,
                              grains2.point(lut(lambda v: 230 if v > 222 else 0)))
    else:  # cloth and checked tablecloths: a woven surface with soft folds
        tex = ImageChops.multiply(weave(rng, w, h, rng.uniform(0.35, 0.7) * ppm),
                                  folds(rng, w, h, rng.uniform(35, 90) * ppm, 140))
        if kind == "cloth":
            hue = rng.random()
            sat, val = rng.uniform(0.2, 0.65), rng.uniform(0.45, 0.9)
            col = colorsys_rgb(hue, sat, val)
            img = ImageOps.colorize(tex, tuple(int(c * 0.3) for c in col),
                                    tuple(min(255, int(c * 1.1)) for c in col))
        else:
            if kind == "checked_red":
                col = (rng.randrange(170, 205), rng.randrange(20, 45), rng.randrange(30, 50))
            else:
                col = (rng.randrange(30, 60), rng.randrange(55, 90), rng.randrange(140, 180))
            white = (rng.randrange(232, 246),) * 3
            size = rng.uniform(8, 25) * ppm
            ox, oy = rng.uniform(0, size), rng.uniform(0, size)
            vx = row_image([int((x + ox) // size) % 2 for x in range(w)], h)
            vy = row_image([int((y + oy) // size) % 2 for y in range(h)], w).transpose(Image.ROTATE_90)
            if rng.random() < 0.6:  # gingham: stripes cross, both = full colour
                level = ImageChops.add(vx, vy)
                mix = [[white[i], (white[i] + col[i]) // 2, col[i]] for i in range(3)]
            else:  # plain checkerboard
                level = ImageChops.difference(vx, vy)
                mix = [[white[i], col[i], col[i]] for i in range(3)]
            img = Image.merge("RGB", [level.point(mix[i] + [mix[i][2]] * 253) for i in range(3)])
            weft = tex.point(lut(lambda v: 60 + v * 0.77))
            img = ImageChops.multiply(img, Image.merge("RGB", [weft] * 3))
    noise = rand_l(rng, w, h).point(lut(lambda v: v * 12 / 255))
    return ImageChops.add(img, Image.merge("RGB", [noise] * 3), 1.0, -6)


def colorsys_rgb(h, s, v):
    return tuple(int(c * 255) for c in colorsys.hsv_to_rgb(h, s, v))


def rounded_poly(w, h, r, n=6):
    """Points of a rounded rectangle w x h centred on the origin (corner radius r)."""
    r = min(r, w / 2, h / 2)
    pts = []
    for cx, cy, a0 in ((w / 2 - r, h / 2 - r, 0), (-w / 2 + r, h / 2 - r, 90),
                       (-w / 2 + r, -h / 2 + r, 180), (w / 2 - r, -h / 2 + r, 270)):
        for i in range(n + 1):
            a = math.radians(a0 + 90 * i / n)
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def convex_overlap(p1, p2):
    """Whether two convex polygons overlap (separating axis test)."""
    for poly in (p1, p2):
        for i in range(len(poly)):
            (x0, y0), (x1, y1) = poly[i], poly[(i + 1) % len(poly)]
            nx, ny = y0 - y1, x1 - x0
            if not nx and not ny:
                continue
            a = [nx * x + ny * y for x, y in p1]
            b = [nx * x + ny * y for x, y in p2]
            if max(a) < min(b) or max(b) < min(a):
                return False
    return True


def make_clutter(rng, n, to_table, frame, doc_rect, ppm):
    """Up to n objects (pen, coin, phone) on the table around, never on, the document. Returns
    a list of (kind, parts), parts being (polygon in table coordinates, colour)."""
    x0, y0, x1, y1 = doc_rect
    gap = 4 * ppm
    keep_out = [(x0 - gap, y0 - gap), (x1 + gap, y0 - gap), (x1 + gap, y1 + gap), (x0 - gap, y1 + gap)]
    placed, out = [], []
    for _ in range(n):
        what = rng.choice(["pen", "coin", "coin", "phone"])
        for _attempt in range(40):
            cx, cy = to_table([(rng.uniform(0, frame[0]), rng.uniform(0, frame[1]))])[0]
            ang = rng.uniform(0, 2 * math.pi)
            ca, sa = math.cos(ang), math.sin(ang)
            place = lambda pts: [(cx + (x * ca - y * sa) * ppm, cy + (x * sa + y * ca) * ppm)
                                 for x, y in pts]
            shade = lambda c, f, add=0: tuple(max(0, min(255, int(v * f + add))) for v in c)
            if what == "pen":
                length, width = rng.uniform(130, 150), rng.uniform(8, 11)
                body = rng.choice([(20, 40, 140), (25, 25, 30), (170, 25, 30), (235, 235, 232),
                                   (40, 120, 70)])
                tube = lambda w, dy=0: [(x, y + dy) for x, y in rounded_poly(length - 18, w, w / 2)]
                parts = [(place(tube(width)), shade(body, 0.7)), (place(tube(width * 0.7)), body),
                         (place(tube(width * 0.22, -width * 0.18)), shade(body, 0.8, 60)),
                         (place([(-length / 2 + 9, -width / 2 * 0.8), (-length / 2 + 9, width / 2 * 0.8),
                                 (-length / 2, width * 0.12), (-length / 2, -width * 0.12)]),
                          (165, 165, 170)),
                         (place([(x + length * 0.3, y - width * 0.4)
                                 for x, y in rounded_poly(length * 0.28, 2.4, 1.2)]), (200, 200, 205))]
                radius = length / 2
            elif what == "coin":
                dia = rng.uniform(18, 27)
                face = rng.choice([(190, 190, 186), (176, 178, 180), (196, 164, 92)])
                circle = lambda r, dx=0, dy=0: [(dx + r * math.cos(2 * math.pi * i / 48),
                                                  dy + r * math.sin(2 * math.pi * i / 48))
                                                 for i in range(48)]
                parts = [(place(circle(dia / 2)), shade(face, 0.62)),
                         (place(circle(dia / 2 * 0.95)), shade(face, 0.85))]
                for k in range(6):  # a soft sheen towards one side
                    r = dia / 2 * (0.9 - 0.09 * k)
                    parts.append((place(circle(r, -0.025 * dia * k, -0.025 * dia * k)),
                                  shade(face, 0.88 + 0.035 * k, 2 * k)))
                parts.append((place(circle(dia / 2 * 0.72)), shade(face, 0.8), dia * 0.03 * ppm))
                radius = dia / 2
            else:
                length, width = rng.uniform(145, 165), rng.uniform(70, 78)
                shell = rng.choice([(22, 22, 26), (40, 42, 48), (150, 150, 155), (30, 40, 60)])
                parts = [(place(rounded_poly(length, width, 9)), shell)]
                if rng.random() < 0.5:  # face up: a dark glass screen with a reflection
                    parts += [(place(rounded_poly(length - 6, width - 6, 6)), (12, 14, 20)),
                              (place([(-20, -width / 2 + 4), (10, -width / 2 + 4), (-25, width / 2 - 4),
                                      (-50, width / 2 - 4)]), (34, 38, 46))]
                else:  # face down: the camera block
                    block = [(x - length / 2 + 20, y - width / 2 + 20) for x, y in rounded_poly(26, 26, 6)]
                    parts.append((place(block), tuple(int(c * 0.7) for c in shell)))
                    for lx, ly in ((-length / 2 + 14, -width / 2 + 14), (-length / 2 + 26, -width / 2 + 14),
                                   (-length / 2 + 14, -width / 2 + 26)):
                        parts.append((place([(lx + 4.5 * math.cos(a / 6), ly + 4.5 * math.sin(a / 6))
                                             for a in range(38)]), (8, 8, 10)))
                radius = length / 2
            if convex_overlap(parts[0][0], keep_out):
                continue
            if any(dist((cx, cy), c) < (radius + r) * ppm for c, r in placed):
                continue
            placed.append(((cx, cy), radius))
            out.append((what, parts))
            break
    return out


def draw_object(photo, parts, scale):
    """Draws polygons (photo coordinates) anti-aliased: at twice the size, then reduced."""
    xs = [x for poly, *_ in parts for x, _y in poly]
    ys = [y for poly, *_ in parts for _x, y in poly]
    x0, y0 = max(0, int(min(xs)) - 2), max(0, int(min(ys)) - 2)
    x1, y1 = min(photo.size[0], int(max(xs)) + 3), min(photo.size[1], int(max(ys)) + 3)
    if x1 <= x0 or y1 <= y0:
        return
    layer = Image.new("RGBa", (2 * (x1 - x0), 2 * (y1 - y0)), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for poly, colour, *line in parts:
        pts = [(2 * (x - x0), 2 * (y - y0)) for x, y in poly]
        if line:
            d.polygon(pts, outline=colour + (255,), width=max(1, int(2 * line[0] * scale)))
        else:
            d.polygon(pts, fill=colour + (255,))
    layer = layer.resize((x1 - x0, y1 - y0), Image.BOX).convert("RGBA")
    photo.paste(layer, (x0, y0), layer)


def plan_geometry(rng, kind, quad, text):
    """Frame size and where the document's four corners land in it. text: [(box, min_px)]
    boxes (in document pixels) whose height must stay at least min_px after the transforms."""
    (qx0, qy0), (qx1, _), _, (_, qy1) = quad[0], quad[1], quad[2], quad[3]
    dw, dh = qx1 - qx0, qy1 - qy0
    cx, cy = (qx0 + qx1) / 2, (qy0 + qy1) / 2
    landscape = rng.random() < (0.15 if kind == "receipt" else 0.8)
    if kind == "receipt" and dh > 1.5 * dw:
        landscape = False  # a long strip is photographed upright
    aspect = 4 / 3 if rng.random() < 0.75 else 16 / 9
    if kind != "receipt" and not landscape:
        aspect = 4 / 3  # a card in a tall 16:9 frame would be too small a part of it
    long_px = rng.randrange(800, 1601)
    tilt = rng.uniform(5, 25)
    rot = rng.uniform(-15, 15)
    # Direction (in the image) of the far side: mostly the top (phone held in front).
    phi = (-90 + rng.uniform(-25, 25)) if rng.random() < 0.55 else rng.uniform(-180, 180)
    shear = rng.uniform(-0.04, 0.04)
    distance = rng.uniform(1.0, 1.3) * max(dw, dh)
    frac = rng.uniform(0.45, 0.8)
    posx, posy = rng.random(), rng.random()

    def project(pts):
        """Rotate on the table, then view through a pinhole camera tilted towards phi."""
        ct, st = math.cos(math.radians(rot)), math.sin(math.radians(rot))
        dx, dy = math.cos(math.radians(phi)), math.sin(math.radians(phi))
        sin_t, cos_t = math.sin(math.radians(tilt)), math.cos(math.radians(tilt))
        out = []
        for x, y in pts:
            x, y = x - cx, y - cy
            xr, yr = x * ct + y * st, -x * st + y * ct  # counter-clockwise on screen
            u = xr * dx + yr * dy  # distance towards the far side
            k = distance / (distance + u * sin_t)
            px = (xr - u * dx + u * cos_t * dx) * k
            py = (yr - u * dy + u * cos_t * dy) * k
            out.append((px + shear * py, py))
        return out

    for _ in range(60):
        W, H = (long_px, round(long_px / aspect)) if landscape else (round(long_px / aspect), long_px)
        margin = 0.025 * min(W, H)
        pts = project(quad)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        bw, bh = max(xs) - min(xs), max(ys) - min(ys)
        fit = min((W - 2 * margin) / bw, (H - 2 * margin) / bh)
        side = W / bw if dw >= dh else H / bh
        scale = min(frac * side, fit)
        need = 0
        for (x0, y0, x1, y1), min_px in text:
            a, b, c, d = project([(x0, y0), (x0, y1), (x1, y0), (x1, y1)])
            need = max(need, min_px / min(dist(a, b), dist(c, d)))
        if scale >= need:
            break
        if need <= min(fit, 0.85 * side):
            scale = need
            break
        if long_px < 1600:
            long_px = min(1600, int(long_px * 1.08) + 1)
        elif tilt > 5.5:
            tilt = max(5.0, tilt - 2)
        else:
            scale = min(fit, need)
            break
    xs, ys = [p[0] * scale for p in pts], [p[1] * scale for p in pts]
    tx = margin - min(xs) + posx * (W - 2 * margin - (max(xs) - min(xs)))
    ty = margin - min(ys) + posy * (H - 2 * margin - (max(ys) - min(ys)))
    corners = [(x + tx, y + ty) for x, y in zip(xs, ys)]
    text_px = None
    if text:
        (x0, y0, x1, y1), _ = text[0]
        fwd = homography(quad, corners)
        a, b, c, d = apply_h(fwd, [(x0, y0), (x0, y1), (x1, y0), (x1, y1)])
        text_px = min(dist(a, b), dist(c, d))
    return {"size": (W, H), "corners": corners, "tilt": tilt, "rotation": rot, "phi": phi,
            "text_px": text_px}


def blob_mask(size, polys, blur, down=4):
    """A soft L mask: polygons (full-resolution coordinates) drawn at 1/down scale, blurred."""
    W, H = size
    small = Image.new("L", (max(1, W // down), max(1, H // down)), 0)
    d = ImageDraw.Draw(small)
    for poly, value in polys:
        d.polygon([(x / down, y / down) for x, y in poly], fill=value)
    small = small.filter(ImageFilter.GaussianBlur(max(0.5, blur / down)))
    return small.resize((W, H), Image.BILINEAR)


def ellipse_poly(cx, cy, rx, ry, ang, n=40):
    ca, sa = math.cos(ang), math.sin(ang)
    angles = [2 * math.pi * i / n for i in range(n)]
    return [(cx + rx * math.cos(t) * ca - ry * math.sin(t) * sa,
             cy + rx * math.cos(t) * sa + ry * math.sin(t) * ca) for t in angles]


def draw_thumb(img, rng, h, box, ppm):
    """A thumb pressed flat over the box (document coordinates), drawn into the photo; it
    comes in from beyond the card's edge (and the frame's)."""
    x0, y0, x1, y1 = box
    yc = (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * (y1 - y0)
    width = max(rng.uniform(18, 22) * ppm, 2.6 * (y1 - y0))
    cap = 0.6 * width
    from_left = rng.random() < 0.6
    sign = 1 if from_left else -1
    tip = x1 + cap + rng.uniform(15, 45) if from_left else x0 - cap - rng.uniform(15, 45)
    ang = math.radians(rng.uniform(-6, 6))
    ca, sa = math.cos(ang), math.sin(ang)
    to_doc = lambda pts: [(tip - sign * t * ca - s * sa, yc - sign * t * sa + s * ca) for t, s in pts]
    place = lambda pts: apply_h(h, to_doc(pts))  # thumb (t back from the tip, s across) -> photo
    W, H = img.size
    length = width
    while length < 4000:  # run the thumb out of the frame: the hand is out of the picture
        (x, y), = to_doc([(length, 0)])
        if h[6] * x + h[7] * y + 1 < 0.3:
            break
        (x, y), = apply_h(h, [(x, y)])
        if not (-0.1 * W < x < 1.1 * W and -0.1 * H < y < 1.1 * H):
            break
        length += 40

    def outline(w, t0=0.0, s0=0.0):
        c = 0.6 * w
        arc = [(t0 + c * (1 - math.cos(a)), s0 + w / 2 * math.sin(a))
               for a in (math.pi * i / 24 - math.pi / 2 for i in range(25))]
        flare = min(1.35, 1 + 0.1 * length / w)  # widening towards the hand
        return [(length, s0 - w / 2 * flare)] + arc + [(length, s0 + w / 2 * flare)]

    skin = rng.choice([(232, 190, 160), (214, 160, 122), (190, 135, 98), (150, 100, 70), (112, 72, 48)])
    px = dist(*place([(0, 0), (0, width)]))  # the thumb's width in the photo
    shape = Image.new("L", img.size, 0)
    ImageDraw.Draw(shape).polygon(place(outline(width)), fill=255)
    shadow = Image.new("L", img.size, 0)
    ImageDraw.Draw(shadow).polygon(place(outline(width, 10, 16)), fill=120)
    img.paste((0, 0, 0), (0, 0), shadow.filter(ImageFilter.GaussianBlur(max(2, px * 0.06))))
    # Colour: darker at the sides, lighter along the ridge, a pale nail near the tip.
    colour = Image.new("RGB", img.size, tuple(int(c * 0.78) for c in skin))
    light = Image.new("L", img.size, 0)
    ImageDraw.Draw(light).polygon(place(outline(width * 0.7, 8, -width * 0.05)), fill=255)
    colour.paste(skin, (0, 0), light.filter(ImageFilter.GaussianBlur(max(2, px * 0.12))))
    ridge = Image.new("L", img.size, 0)
    ImageDraw.Draw(ridge).polygon(place(outline(width * 0.25, 30, -width * 0.12)), fill=150)
    colour.paste(tuple(min(255, c + 30) for c in skin), (0, 0),
                 ridge.filter(ImageFilter.GaussianBlur(max(2, px * 0.1))))
    nail = [(0.42 * width + 0.32 * width * math.cos(a), 0.26 * width * math.sin(a))
            for a in (2 * math.pi * i / 32 for i in range(32))]
    nail_mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(nail_mask).polygon(place(nail), fill=255)
    colour.paste(tuple(min(255, int(c * 0.55 + 255 * 0.45)) for c in skin), (0, 0),
                 nail_mask.filter(ImageFilter.GaussianBlur(max(1, px * 0.025))))
    img.paste(colour, (0, 0), shape.filter(ImageFilter.GaussianBlur(max(0.8, px * 0.01))))


def bend_profile(rng, n, amp):
    """n+1 offsets along a bow or a sine wave, zero at both ends, largest magnitude amp."""
    waves = rng.choice([0.5, 1, 1.5])
    ph = 0 if waves == 0.5 else rng.uniform(0, 2 * math.pi)
    raw = [math.sin(2 * math.pi * waves * i / n + ph) for i in range(n + 1)]
    raw = [v - raw[0] - (raw[n] - raw[0]) * i / n for i, v in enumerate(raw)]
    top = max(abs(v) for v in raw) or 1
    return [amp * v / top for v in raw]


def curl_receipt(img, alpha, rng):
    """Bends a receipt: columns shifted up or down along a bow or a wave (the corners stay
    put), sometimes rows shifted sideways too, with the shading of bent paper. Returns the
    image, its alpha, and the document's corners in it (the canvas gains a margin)."""
    w, h = img.size
    amp = rng.uniform(3, 9)  # document pixels: a few pixels in the photo
    pad = int(amp) + 4
    cw, chh = w + 2 * pad, h + 2 * pad
    canvas = Image.new("RGBa", (cw, chh), (0, 0, 0, 0))
    rgba = img.convert("RGBA")
    rgba.putalpha(alpha)
    canvas.paste(rgba.convert("RGBa"), (pad, pad))
    n = 32
    off = bend_profile(rng, n, amp)
    # Light falls differently on the slopes: shade by the slope of the bend.
    slope = [(off[min(n, i + 1)] - off[max(0, i - 1)]) for i in range(n + 1)]
    big = max(abs(v) for v in slope) or 1
    k = rng.uniform(0.04, 0.1)
    shade = [int(255 * (1 - k / 2 - k / 2 * slope[min(n, max(0, (x - pad) * n // w))] / big))
             for x in range(cw)]
    m = row_image(shade, chh)
    r, g, b, a = canvas.split()
    canvas = Image.merge("RGBa", [ImageChops.multiply(band, m) for band in (r, g, b)] + [a])
    mesh = []
    for i in range(n):
        xa, xb = pad + w * i // n, pad + w * (i + 1) // n
        oa, ob = off[i], off[i + 1]
        mesh.append(((xa, 0, xb, chh), (xa, -oa, xa, chh - oa, xb, chh - ob, xb, -ob)))
    canvas = canvas.transform(canvas.size, Image.MESH, mesh, Image.BICUBIC)
    if rng.random() < 0.5:  # the length of the strip waves sideways a little too
        off = bend_profile(rng, n, rng.uniform(2, 6))
        mesh = [((0, 0, cw, pad), (0, 0, 0, pad, cw, pad, cw, 0)),
                ((0, pad + h, cw, chh), (0, pad + h, 0, chh, cw, chh, cw, pad + h))]
        for i in range(n):
            ya, yb = pad + h * i // n, pad + h * (i + 1) // n
            oa, ob = off[i], off[i + 1]
            mesh.append(((0, ya, cw, yb), (-oa, ya, -ob, yb, cw - ob, yb, cw - oa, ya)))
        canvas = canvas.transform(canvas.size, Image.MESH, mesh, Image.BICUBIC)
    canvas = canvas.convert("RGBA")
    quad = [(pad, pad), (pad + w, pad), (pad + w, pad + h), (pad, pad + h)]
    return canvas.convert("RGB"), canvas.split()[3], quad


def phone_photo(img, rng, kind, quad=None, alpha=None, text=(), guard=None, cover=None,
                background=None, ppm=None, sharp=False, curl=False):
    """Photographs the document img lying on a table with a phone. Returns (JPEG bytes, truth).
    kind: "card", "receipt" or "screen" (a phone showing a card). quad: the document's corners
    in img (default: img's own corners); alpha: its outline; text: [(box, min_px)] to keep
    readable; guard: a box that glare must not wash out; cover: ("thumb", box) to hide box
    under a thumb; sharp: no anti-aliasing before the warp (keeps a screen's pixel grid)."""
    if alpha is None:
        alpha = Image.new("L", img.size, 255)
        if kind == "card":  # ID-1 rounded corners, 3.18 mm
            alpha = Image.new("L", img.size, 0)
            ImageDraw.Draw(alpha).rounded_rectangle([0, 0, img.size[0] - 1, img.size[1] - 1], radius=37,
                                                    fill=255)
        elif kind == "receipt":  # torn-off top and bottom edges
            w, h = img.size
            zig = [(x, (x // 9 % 2) * 3 + rng.uniform(0, 2)) for x in range(0, w + 9, 9)]
            poly = [(x, y) for x, y in zig] + [(x, h - y) for x, y in zig[::-1]]
            alpha = Image.new("L", img.size, 0)
            ImageDraw.Draw(alpha).polygon(poly, fill=255)
    if curl:
        img, alpha, quad = curl_receipt(img, alpha, rng)
        ox, oy = quad[0]
        shift = lambda b: (b[0] + ox, b[1] + oy, b[2] + ox, b[3] + oy)
        text = [(shift(b), px) for b, px in text]
        guard = guard and shift(guard)
    if quad is None:
        quad = [(0, 0), (img.size[0], 0), (img.size[0], img.size[1]), (0, img.size[1])]
    ppm = ppm or PX_PER_MM.get(kind, 7.5)
    geo = plan_geometry(rng, kind, quad, list(text))
    W, H = geo["size"]
    corners = geo["corners"]
    to_doc = homography(corners, quad)  # photo -> document (= table) coordinates
    to_img = homography(quad, corners)
    scale_near = max(dist(corners[i], corners[(i + 1) % 4]) / dist(quad[i], quad[(i + 1) % 4])
                     for i in range(4))  # photo pixels per document pixel on the nearest side

    # The table: a texture in rotated table coordinates, warped by the same homography.
    background = background or rng.choice(BACKGROUNDS)
    table_pts = apply_h(to_doc, [(0, 0), (W, 0), (W, H), (0, H)])
    alpha_t = rng.uniform(0, math.pi)
    q = 0.8 * scale_near
    for _ in range(6):
        ca, sa = math.cos(alpha_t) * q, math.sin(alpha_t) * q
        rot_pts = [(x * ca - y * sa, x * sa + y * ca) for x, y in table_pts]
        mx, my = min(p[0] for p in rot_pts), min(p[1] for p in rot_pts)
        tw = int(max(p[0] for p in rot_pts) - mx) + 4
        th = int(max(p[1] for p in rot_pts) - my) + 4
        if tw * th <= 2.2 * W * H:
            break
        q *= math.sqrt(2.2 * W * H / (tw * th)) * 0.98
    q = math.hypot(ca, sa)
    aff = (ca, -sa, -mx + 2, sa, ca, -my + 2)  # table -> texture
    tex = table_texture(rng, background, tw, th, q * ppm)
    photo = tex.transform((W, H), Image.PERSPECTIVE, affine_then_h(aff, to_doc), Image.BILINEAR)

    # Clutter around the document, and soft shadows of it and of the document.
    light = rng.uniform(0, 2 * math.pi)
    sdx, sdy = math.cos(light) * 1.5 * ppm, math.sin(light) * 1.5 * ppm
    (qx0, qy0), (qx1, qy1) = quad[0], quad[2]
    clutter = make_clutter(rng, rng.randrange(4), lambda p: apply_h(to_doc, p), (W, H),
                           (qx0, qy0, qx1, qy1), ppm)
    on_photo = lambda pts: apply_h(to_img, pts)
    shadows = [(on_photo([(x + sdx, y + sdy) for x, y in quad]), 150)]
    shadows += [(on_photo([(x + sdx * 1.5, y + sdy * 1.5) for x, y in parts[0][0]]), 170)
                for _, parts in clutter]
    photo = Image.composite(Image.new("RGB", (W, H), (0, 0, 0)), photo,
                            blob_mask((W, H), shadows, 1.6 * ppm * scale_near, down=2))
    for _what, parts in clutter:
        draw_object(photo, [(on_photo(poly), colour, *line) for poly, colour, *line in parts], scale_near)

    # The document, anti-aliased to about its final size, then warped into place.
    doc = img.convert("RGBA")
    doc.putalpha(alpha)
    doc = doc.convert("RGBa")
    src = quad
    r = min(1.0, scale_near * 1.2)
    if r < 0.95 and not sharp:
        size = (max(1, round(doc.size[0] * r)), max(1, round(doc.size[1] * r)))
        rx, ry = size[0] / doc.size[0], size[1] / doc.size[1]
        doc = doc.resize(size, Image.LANCZOS)
        src = [(x * rx, y * ry) for x, y in quad]
    warped = doc.transform((W, H), Image.PERSPECTIVE, homography(corners, src), Image.BICUBIC)
    warped = warped.convert("RGBA")
    photo.paste(warped, (0, 0), warped)
    if cover and cover[0] == "thumb":
        draw_thumb(photo, rng, to_img, cover[1], ppm)

    # Light: a hand's shadow, glare, a colour cast with brightness, a vignette.
    info = {}
    diag = max(dist(corners[0], corners[2]), dist(corners[1], corners[3]))
    if rng.random() < 0.3:
        i = rng.randrange(4)
        (ax, ay), (bx, by) = corners[i], corners[(i + 1) % 4]
        t = rng.uniform(0.2, 0.8)
        mx_, my_ = ax + (bx - ax) * t, ay + (by - ay) * t
        ccx, ccy = sum(p[0] for p in corners) / 4, sum(p[1] for p in corners) / 4
        nx, ny = mx_ - ccx, my_ - ccy
        nl = math.hypot(nx, ny) or 1
        push = rng.uniform(0.1, 0.3) * diag
        hx, hy = mx_ + nx / nl * push, my_ + ny / nl * push
        rx_, ry_ = rng.uniform(0.3, 0.45) * diag, rng.uniform(0.18, 0.3) * diag
        mask = blob_mask((W, H), [(ellipse_poly(hx, hy, rx_, ry_, math.atan2(by - ay, bx - ax)), 255)],
                         0.12 * diag, down=8)
        strength = rng.uniform(0.2, 0.4)
        peak = mask.getextrema()[1] or 1
        photo = Image.composite(Image.new("RGB", (W, H), (10, 10, 20)), photo,
                                mask.point(lut(lambda v: v * 255 * strength / peak)))
        info["hand_shadow"] = round(strength, 2)
    glare = None
    if rng.random() < 0.4:  # a reflection of the lamp: soft edge, bright core
        u, v = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
        gx, gy = apply_h(to_img, [(quad[0][0] + u * (qx1 - qx0), quad[0][1] + v * (qy1 - qy0))])[0]
        rx_ = rng.uniform(0.06, 0.16) * min(W, H)
        ry_ = rx_ * rng.uniform(0.35, 0.9)
        peak = rng.uniform(0.55, 0.8)
        tilt_g = rng.uniform(0, math.pi)
        glare = blob_mask((W, H), [(ellipse_poly(gx, gy, rx_, ry_, tilt_g), 130),
                                   (ellipse_poly(gx, gy, rx_ * 0.5, ry_ * 0.5, tilt_g), 255)], 0.35 * ry_)
        top = glare.getextrema()[1] or 1
        glare = glare.point(lut(lambda v: v * 255 * peak / top))
        if guard:  # keep the key line readable: glare over it at most 40 %
            gx0, gy0, gx1, gy1 = guard
            poly = apply_h(to_img, [(gx0 - 10, gy0 - 8), (gx1 + 10, gy0 - 8), (gx1 + 10, gy1 + 8),
                                    (gx0 - 10, gy1 + 8)])
            limit = ImageChops.invert(blob_mask((W, H), [(poly, 255)], 6).point(lut(lambda v: v * 0.6)))
            glare = ImageChops.darker(glare, limit)
        info["glare"] = round(peak, 2)
    cast_name = rng.choice(["warm", "warm", "cool", "neutral"])
    cast = {"warm": (1.05, 0.97, 0.85), "cool": (0.88, 0.96, 1.06), "neutral": (1.0, 1.0, 1.0)}[cast_name]
    cast = [c * rng.uniform(0.98, 1.02) for c in cast]
    bright = rng.uniform(0.75, 1.1)
    photo = photo.point(sum((lut(lambda v, c=c: v * c * bright) for c in cast), []))
    vig = rng.uniform(0.12, 0.35)
    grad = Image.radial_gradient("L").resize((W, H), Image.BILINEAR)
    grad = grad.point(lut(lambda v: 255 * (1 - vig * (v / 255) ** 2)))
    photo = ImageChops.multiply(photo, Image.merge("RGB", [grad] * 3))
    if glare is not None:  # the reflection saturates: add it after the exposure
        photo = Image.composite(Image.new("RGB", (W, H), (255, 254, 250)), photo, glare)

    # Camera: blur, sensor noise, JPEG, sometimes a second (messenger) JPEG pass.
    blur = rng.uniform(0.3, 1.0)
    photo = photo.filter(ImageFilter.GaussianBlur(blur))
    amp = rng.randrange(4, 11)
    noise = [rand_l(rng, W, H).point(lut(lambda v: v * 2 * amp / 255)) for _ in range(3)]
    photo = ImageChops.add(photo, Image.merge("RGB", noise), 1.0, -amp)
    turn = 0
    if TURNS is not None:
        turn = TURNS.choice([90, 180, 270])
        photo = photo.transpose({90: Image.ROTATE_90, 180: Image.ROTATE_180, 270: Image.ROTATE_270}[turn])
        corners = [{90: (y, W - x), 180: (W - x, H - y), 270: (H - y, x)}[turn] for x, y in corners]
    quality = rng.randrange(35, 71)
    buf = io.BytesIO()
    photo.save(buf, "JPEG", quality=quality)
    again = None
    if rng.random() < 0.3:
        again = rng.randrange(35, 71)
        second = io.BytesIO()
        Image.open(io.BytesIO(buf.getvalue())).save(second, "JPEG", quality=again)
        buf = second
    truth = {"phone": True, "corners": [[round(x, 1), round(y, 1)] for x, y in corners],
             "perspective": round(geo["tilt"], 2), "rotation": round(geo["rotation"], 2),
             "tilt_direction": round((geo["phi"] - turn) % 360, 1), "background": background,
             "size": list(photo.size), "clutter": [c[0] for c in clutter], "light": cast_name,
             "brightness": round(bright, 2), "blur": round(blur, 2), "quality": quality,
             "requality": again, "turned": turn, **info}
    if geo["text_px"] is not None:
        truth["text_px"] = round(geo["text_px"], 1)
    return buf.getvalue(), truth


def draw_blank_card(rng):
    """A card with the card's background and maybe its titles, but no number and no name."""
    img, d = card_face(1012, 638)
    if rng.random() < 0.7:
        f_title = font(rng.choice(FONTS[:2]), 34)
        d.text((40, 24), "KAD PENGENALAN", font=f_title, fill=(20, 30, 90))
        d.text((640, 24), "MyKad", font=f_title, fill=(160, 20, 30))
        d.text((40, 66), "MALAYSIA", font=font(rng.choice(FONTS), 30), fill=(20, 30, 90))
        d.text((40, 100), "IDENTITY CARD", font=font(FONTS[0], 22), fill=(20, 30, 90))
    if rng.random() < 0.6:
        d.rectangle([700, 150, 960, 470], fill=(180, 190, 205))
    return img


def grating(w, h, period, angle):
    """A fine sine line grating (L) with lines `period` pixels apart, turned by angle."""
    side = int(math.hypot(w, h)) + 4
    row = [int(128 + 110 * math.cos(2 * math.pi * x / period)) for x in range(side)]
    g = row_image(row, side).rotate(angle, Image.BILINEAR)
    return g.crop(((side - w) // 2, (side - h) // 2, (side - w) // 2 + w, (side - h) // 2 + h))


def screen_device(card_img, rng):
    """The card shown on a phone screen: dark bezel, moire from two slightly turned fine
    gratings, and RGB subpixel stripes. Returns (image, alpha) of the whole phone."""
    dw, dh = 1300, 620
    bezel = rng.randrange(18, 34)
    sw, sh = dw - 2 * bezel, dh - 2 * bezel
    screen = Image.new("RGB", (sw, sh), rng.choice([(0, 0, 0), (18, 18, 20), (242, 242, 244)]))
    ch = int(sh * rng.uniform(0.86, 0.97))
    cw = int(ch * card_img.size[0] / card_img.size[1])
    screen.paste(card_img.resize((cw, ch), Image.LANCZOS),
                 ((sw - cw) // 2 + rng.randrange(-20, 21), (sh - ch) // 2))
    screen = screen.point(lut(lambda v: 20 + v * 0.92) * 3)  # an emissive screen: no true black
    p1 = rng.uniform(2.6, 3.6)
    a1 = rng.uniform(-4, 4)
    second = grating(sw, sh, p1 * rng.uniform(1.03, 1.09), a1 + rng.uniform(1.5, 5))
    second = wave_columns(second, rng, rng.uniform(2, 6), rng.uniform(40, 120))  # curved fringes
    beat = ImageChops.multiply(grating(sw, sh, p1, a1), second)
    k = rng.uniform(0.4, 0.6)
    beat = beat.point(lut(lambda v: 255 * (1 - k) + v * k))
    sp = 2  # subpixel width in pixels: R, G, B columns, a dark gap every pixel row
    bands = [row_image([255 if (x // sp) % 3 == c else 150 for x in range(sw)], sh) for c in range(3)]
    rows = row_image([200 if y % (3 * sp) == 0 else 255 for y in range(sh)], sw)
    rows = rows.transpose(Image.ROTATE_90)
    sub = Image.merge("RGB", [ImageChops.multiply(b, rows) for b in bands])
    screen = ImageChops.multiply(ImageChops.multiply(screen, Image.merge("RGB", [beat] * 3)), sub)
    screen = screen.point(lut(lambda v: min(255, v * 1.35)) * 3)  # subpixels lose light: brighten back
    body = rng.choice([(16, 16, 18), (35, 36, 40), (200, 200, 205)])
    dev = Image.new("RGB", (dw, dh), body)
    ImageDraw.Draw(dev).rounded_rectangle([bezel - 6, bezel - 6, dw - bezel + 6, dh - bezel + 6], radius=30,
                                          fill=(8, 8, 10))
    dev.paste(screen, (bezel, bezel))
    ImageDraw.Draw(dev).ellipse([bezel + 10, dh // 2 - 9, bezel + 28, dh // 2 + 9], fill=(4, 4, 6))  # camera
    alpha = Image.new("L", (dw, dh), 0)
    ImageDraw.Draw(alpha).rounded_rectangle([0, 0, dw - 1, dh - 1], radius=70, fill=255)
    return dev, alpha


def draw_sticker(img, rng, box):
    """A label stuck over box on the card."""
    x0, y0, x1, y1 = box
    pad = rng.randrange(12, 30)
    rect = [x0 - pad - rng.randrange(0, 30), y0 - pad, x1 + pad + rng.randrange(0, 60), y1 + pad]
    colour = rng.choice([(246, 246, 240), (250, 222, 80), (255, 140, 170), (150, 220, 120),
                         (245, 245, 245)])
    shadow = Image.new("L", img.size, 0)
    ImageDraw.Draw(shadow).rounded_rectangle([rect[0] + 4, rect[1] + 5, rect[2] + 4, rect[3] + 5], radius=10,
                                             fill=90)
    img.paste((40, 40, 50), (0, 0), shadow.filter(ImageFilter.GaussianBlur(4)))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(rect, radius=10, fill=colour)
    d.line([(rect[0] + 8, rect[3] - 6), (rect[2] - 8, rect[3] - 6)],
           fill=tuple(int(c * 0.93) for c in colour), width=2)


class Decks:
    """Backgrounds dealt from shuffled decks per document kind, so every kind meets every
    table; the first receipt always lies on white granite (white on white)."""

    def __init__(self, rng):
        self.rng, self.decks, self.first = rng, {}, True

    def deal(self, kind):
        deck = self.decks.setdefault(kind, [])
        if not deck:
            deck.extend(BACKGROUNDS)
            self.rng.shuffle(deck)
            if kind == "receipt" and self.first:
                deck.remove("white_granite")
                deck.insert(0, "white_granite")
                self.first = False
        return deck.pop(0)


def phone_card(rng, prng, decks):
    img, facts, ic_box = draw_card(rng)
    data, t = phone_photo(img, prng, "card", text=[(ic_box, 15)], guard=ic_box,
                          background=decks.deal("card"))
    return data, {**facts, "hard": False, "angle": t["rotation"], **t}


def phone_receipt(rng, prng, decks, long_share):
    long = prng.random() < long_share
    faded = prng.random() < 0.5
    ink = (prng.randrange(90, 141),) * 3 if faded else (25, 25, 25)
    img, facts, total_box, n_items = draw_receipt(rng, (8, 15) if long else (2, 7), ink)
    w, h = img.size
    band = None
    if faded and prng.random() < 0.5:  # a paler band where the print head was weak
        y0 = int(prng.uniform(0.05, 0.75) * h)
        y1 = min(h, y0 + int(prng.uniform(0.1, 0.3) * h))
        part = img.crop((0, y0, w, y1))
        paper = Image.new("RGB", part.size, (250, 250, 246))
        img.paste(Image.blend(part, paper, prng.uniform(0.3, 0.5)), (0, y0))
        band = [y0, y1]
    cap = total_box[3] - total_box[1]
    top = 20 + (total_box[1] - 20) % 34  # where capitals start within a line
    last = h - 54 + (top - 20)  # the last line is 54 px above the bottom
    text = [(total_box, 12), ((20, top, w - 20, top + cap), 11), ((20, last, w - 20, last + cap), 11)]
    curl = prng.random() < 0.5
    data, t = phone_photo(img, prng, "receipt", text=text, guard=total_box, background=decks.deal("receipt"),
                          curl=curl)
    extra = {"items": n_items, "long": long, "curled": curl, "faded": ink[0] if faded else None}
    if band:
        extra["faded_band"] = band
    return data, {**facts, "hard": False, "angle": t["rotation"], **t, **extra}


REFUSE_CASES = ["blank_card", "screen_moire", "number_covered"]


def phone_refusal(rng, prng, decks, i):
    case = REFUSE_CASES[i % len(REFUSE_CASES)]
    truth = {"kind": "refuse", "case": case}
    if case == "blank_card":
        data, t = phone_photo(draw_blank_card(rng), prng, "card", background=decks.deal("card"))
    elif case == "screen_moire":
        img, facts, _ = draw_card(rng)
        dev, alpha = screen_device(img, prng)
        data, t = phone_photo(dev, prng, "screen", alpha=alpha, ppm=1300 / 160, sharp=True,
                              background=decks.deal("card"))
        truth["ic"] = facts["ic"]
    else:
        img, facts, ic_box = draw_card(rng)
        cover = None
        if prng.random() < 0.5:
            draw_sticker(img, prng, ic_box)
            truth["cover"] = "sticker"
        else:
            cover = ("thumb", ic_box)
            truth["cover"] = "thumb"
        data, t = phone_photo(img, prng, "card", cover=cover, background=decks.deal("card"))
        truth["ic"] = facts["ic"]
    return data, {**truth, **t}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cards", type=int, default=20)
    ap.add_argument("--receipts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--hard", action="store_true")
    ap.add_argument("--turned", action="store_true")
    ap.add_argument("--phone", action="store_true",
                    help="phone photos of the document lying on a table (see the module docstring)")
    ap.add_argument("--refuse", type=int, default=0, help="with --phone: N photos that must be refused")
    ap.add_argument("--long", type=float, default=None,
                    help="with --phone: share of long receipts, 8-14 items (default 0.4)")
    args = ap.parse_args()
    if (args.refuse or args.long is not None) and not args.phone:
        ap.error("--refuse and --long need --phone")
    global TURNS
    if args.turned:
        TURNS = random.Random(args.seed * 7919 + 1)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    truth = []

    def save(name, data, t):
        with open(os.path.join(args.out, name), "wb") as out:
            out.write(data)
        truth.append({"file": name, **t})

    if args.phone:
        prng = random.Random(args.seed * 7919 + 2)  # everything photographic in phone mode
        decks = Decks(random.Random(args.seed * 7919 + 3))
        for i in range(args.cards):
            save(f"card-{i + 1:04d}.jpg", *phone_card(rng, prng, decks))
        for i in range(args.receipts):
            long_share = 0.4 if args.long is None else args.long
            save(f"receipt-{i + 1:04d}.jpg", *phone_receipt(rng, prng, decks, long_share))
        for i in range(args.refuse):
            save(f"refuse-{i + 1:04d}.jpg", *phone_refusal(rng, prng, decks, i))
    else:
        for i in range(args.cards):
            data, t = card(rng, args.hard)
            name = f"card-{i + 1:04d}.jpg"
            open(os.path.join(args.out, name), "wb").write(data)
            truth.append({"file": name, **t})
        for i in range(args.receipts):
            data, t = receipt(rng, args.hard)
            name = f"receipt-{i + 1:04d}.jpg"
            open(os.path.join(args.out, name), "wb").write(data)
            truth.append({"file": name, **t})
    with open(os.path.join(args.out, "truth.json"), "w") as out:
        json.dump(truth, out, indent=1)


if __name__ == "__main__":
    main()
