"""Writes the PDF fixtures of the ingest tests by hand (raw PDF syntax, no PDF library), so
the parser is checked against files it did not produce.

    python3 make_pdfs.py
"""
import zlib


def pdf(pages, compress=True, info_title=None):
    """pages: list of lists of text lines (None: a page with no text at all)."""
    objs = []

    def add(body):
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    page_ids = []
    pages_id_placeholder = len(objs) + 1 + 2 * len(pages)
    for lines in pages:
        if lines is None:
            content = b"q 0.9 g 72 72 200 200 re f Q"
        else:
            ops = [b"BT /F1 12 Tf 14 TL 72 720 Td"]
            for line in lines:
                esc = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(b"(" + esc.encode("cp1252") + b") Tj T*")
            ops.append(b"ET")
            content = b"\n".join(ops)
        if compress:
            data = zlib.compress(content)
            stream = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
        else:
            stream = add(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
        page_ids.append(add(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R /Resources << /Font << /F1 %d 0 R >> >> >>" % (pages_id_placeholder, stream, font)))
    pages_id = add(b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % p for p in page_ids) + b"] /Count %d >>" % len(page_ids))
    assert pages_id == pages_id_placeholder
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    info = add(b"<< /Title (" + info_title.encode() + b") >>") if info_title else None
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objs) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


handbook = pdf(
    [
        ["Employee Handbook", "", "Holidays are booked in the HR portal at least two weeks ahead.",
         "Unused holiday days carry over until the end of March."],
        ["Expenses", "", "Travel expenses are reimbursed within 30 days of the claim.",
         "- Keep every receipt.", "- Submit claims monthly."],
    ],
    info_title="Employee Handbook",
)
open("handbook.pdf", "wb").write(handbook)
open("scan.pdf", "wb").write(pdf([None, None]))
open("truncated.pdf", "wb").write(handbook[: len(handbook) // 2])
