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
"""

import argparse
import datetime
import io
import json
import os
import random

from PIL import Image, ImageDraw, ImageFilter, ImageFont

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


def card(rng, hard):
    digits, born, state = valid_ic(rng)
    number = f"{digits[:6]}-{digits[6:8]}-{digits[8:]}"
    name = f"{rng.choice(GIVEN)} {rng.choice(GIVEN)} {rng.choice(FAMILY)}"
    postcode, city, home_state = rng.choice(CITIES)
    address = [f"NO {rng.randrange(1, 200)} {rng.choice(STREETS)}", rng.choice(AREAS),
               f"{postcode} {city}", home_state]
    w, h = 1012, 638  # ID-1 card at ~300 dpi scaled down
    img = Image.new("RGB", (w, h), (214, 228, 240))
    d = ImageDraw.Draw(img)
    for y in range(0, h, 6):  # a faint background pattern like the card's guilloche
        d.line([(0, y), (w, y + 40)], fill=(200, 216, 232), width=1)
    f_title = font(rng.choice(FONTS[:2]), 34)
    f_text = font(rng.choice(FONTS), 30)
    f_num = font(rng.choice(["DejaVuSans-Bold.ttf", "DejaVuSansCondensed-Bold.ttf"]), 44)
    d.text((40, 24), "KAD PENGENALAN", font=f_title, fill=(20, 30, 90))
    d.text((640, 24), "MyKad", font=f_title, fill=(160, 20, 30))
    d.text((40, 66), "MALAYSIA", font=f_text, fill=(20, 30, 90))
    d.text((40, 100), "IDENTITY CARD", font=font(FONTS[0], 22), fill=(20, 30, 90))
    d.text((40, 150), number, font=f_num, fill=(10, 10, 10))
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
    data, (angle, turn) = photo_effects(img, rng, hard)
    truth = {"kind": "ic", "ic": digits, "name": name, "birth_date": born.isoformat(),
             "gender": "male" if male else "female", "place_of_birth_state": state,
             "postcode": postcode, "hard": hard, "angle": round(angle, 2), "turned": turn}
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


def receipt(rng, hard):
    merchant = rng.choice(MERCHANTS)
    day = datetime.date(2024, 3, 1) + datetime.timedelta(days=rng.randrange(0, 600))
    items = []
    for _ in range(rng.randrange(2, 7)):
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
    for i, line in enumerate(lines):
        d.text((20, 20 + 34 * i), line, font=f, fill=(25, 25, 25))
    data, (angle, turn) = photo_effects(img, rng, hard)
    truth = {"kind": "receipt", "total": money(rounded), "date": day.isoformat(),
             "merchant": merchant, "hard": hard, "angle": round(angle, 2), "turned": turn}
    return data, truth


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cards", type=int, default=20)
    ap.add_argument("--receipts", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2025)
    ap.add_argument("--hard", action="store_true")
    ap.add_argument("--turned", action="store_true")
    args = ap.parse_args()
    global TURNS
    if args.turned:
        TURNS = random.Random(args.seed * 7919 + 1)
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    truth = []
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
