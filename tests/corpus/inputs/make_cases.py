#!/usr/bin/python3
"""Writes the bad-input corpus (tests/corpus/inputs/cases.tsv) into a scratch folder.

Usage: /usr/bin/python3 make_cases.py OUTDIR CASES_TSV FIXTURES [--big] [--only CASE ...]

For every case of CASES_TSV (one line per run: see the comment at its top) it makes
OUTDIR/CASE/ with
  job.ini           [model] path, [input] paths / format / id_column, [output] table = table;
                    the TSV's `set` column is passed by tests/integration/test_corpus.sh as
                    --set options, so the job file is the same for every policy
  the input files   for input classes (below), or data.csv and model.onnx for model classes
  ids.txt           every id of the input, JSON-quoted as precast quotes keys (tool_dump)
  special.txt       the ids of the damaged / unusual rows (JSON-quoted)
Big cases (the classes in BIG, tens of MiB each) are written only with --big or --only, so
that the test can write, run and delete them one at a time.

Nothing here decides an outcome: the expectations are the TSV's, taken from README.md (exit
status table, bad_rows, reject reasons) and the module headers (mapper/csv.h, libsvm.h,
numparse.h). This file only builds inputs that put each damage where the TSV says:

Positions of row classes (one damaged row among NGOOD = 200 good ones, 100 + 100):
  first    the first data row (CSV line 2, LIBSVM line 1)
  last     the last row (CSV line 202, LIBSVM line 201)
  split    row 101: the boundary between rank 0's and rank 1's byte ranges under -np 2 (the
           concatenation is cut at total/2, mapper/split.c) falls INSIDE the row, at the
           byte the class chooses (middle, or between "\\r" and "\\n", or just after a quoted
           newline); good rows are padded with trailing blanks (valid: numparse.h, libsvm.h)
           until the cut lands there exactly
  split1m  row 101 again, but the cut is the 1 MiB segment boundary of `run.split_mb = 1`
           (its smallest value) under one rank: a good row before it is padded so that byte
           1048576 of the file falls inside the damaged row
Positions of file classes (a special file S beside two good files of 100 rows): S sorts
  first / last among the three files, or (split) sits between them with the -np 2 cut inside
  it (for an empty S: exactly at its place).
Positions of model classes: where in the model the damage is (first / mid / last node,
  initializer or byte).
"""
import argparse
import gzip
import os
import random

NGOOD = 200
MIB = 1 << 20
HEADER = b"id,f0,f1,f2,f3"
BIG = {"line_64mib", "line_16mib_max", "line_16mib_plus1", "svm_line_17mib"}


# --- ids as precast prints them (mapper/head.h json_quote) -----------------------------
def utf8_len(b, i):
    c = b[i]
    n = 4 if 0xF0 <= c <= 0xF4 else 3 if c >= 0xE0 and c < 0xF0 else 2 if 0xC2 <= c < 0xE0 else 0
    if n == 0 or i + n > len(b):
        return 0
    return n if all((b[i + k] & 0xC0) == 0x80 for k in range(1, n)) else 0


def json_quote(b):
    out = ['"']
    i = 0
    while i < len(b):
        c = b[i]
        if c in (0x22, 0x5C):
            out.append("\\" + chr(c))
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif c in (0x0A, 0x0D, 0x09):
            out.append({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}[c])
        elif c >= 0x80 and utf8_len(b, i):
            n = utf8_len(b, i)
            out.append(b[i:i + n].decode("utf-8"))
            i += n
            continue
        else:
            out.append("\\u%04x" % c)
        i += 1
    out.append('"')
    return "".join(out)


# --- good rows ------------------------------------------------------------------------
def good_csv(prefix, n, seed):
    rnd = random.Random(seed)
    return [[("%s%05d," % (prefix, i)).encode() + b",".join(b"%.4f" % rnd.uniform(-2, 2) for _ in range(4)),
             b"\n", ("%s%05d" % (prefix, i)).encode()] for i in range(n)]


def good_svm(prefix, n, seed, one_based):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        idx = sorted(rnd.sample(range(4), rnd.randint(1, 4)))
        pairs = b" ".join(b"%d:%.4f" % (k + (1 if one_based else 0), rnd.uniform(-2, 2)) for k in idx)
        rid = ("%s%05d" % (prefix, i)).encode()
        rows.append([rid + b" " + pairs, b"\n", rid])
    return rows


# --- row classes: (format, row bytes, terminator, cut offset in the row or None = middle,
#                   id or None, needs a tail file) -------------------------------------
def csv_row(cls):
    r = None
    term = b"\n"
    k = None
    rid = None
    if cls == "too_few_fields": r = b"x_few,1.0,2.0,3.0"
    elif cls == "too_many_fields": r = b"x_many,1.0,2.0,3.0,4.0,5.0"
    elif cls == "non_numeric": r = b"x_abc,1.0,abc,3.0,4.0"
    elif cls == "overflow_1e999": r = b"x_big,1e999,2.0,3.0,4.0"
    elif cls == "float32_overflow": r = b"x_f32,3.5e38,2.0,3.0,4.0"
    elif cls == "nan": r = b"x_nan,1.0,nan,3.0,4.0"
    elif cls == "minus_inf": r = b"x_minf,1.0,2.0,-inf,4.0"
    elif cls == "infinity": r = b"x_inf,1.0,2.0,3.0,Infinity"
    elif cls == "hex_float": r = b"x_hex,0x1p3,2.0,3.0,4.0"
    elif cls == "comma_decimal": r = b'x_comma,"1,5",2.0,3.0,4.0'
    elif cls == "empty_feature": r = b"x_empty,1.0,,3.0,4.0"
    elif cls == "nul_in_feature": r = b"x_nul,1.0,2\x00.0,3.0,4.0"
    elif cls == "non_utf8_feature": r = b"x_u8f,1.0,2.\xff0,3.0,4.0"
    elif cls == "empty_id": r, rid = b",1.0,2.0,3.0,4.0", b""
    elif cls == "non_utf8_id": r, rid = b"x_\xff\xfe\xc3(,1.0,2.0,3.0,4.0", b"x_\xff\xfe\xc3("
    elif cls == "nul_in_id": r, rid = b"x_\x00nul,1.0,2.0,3.0,4.0", b"x_\x00nul"
    elif cls == "id_10kib":
        rid = b"x_" + b"k" * (10 * 1024 - 2)
        r = rid + b",1.0,2.0,3.0,4.0"
    elif cls == "line_1mib_id":
        rid = b"x_" + b"m" * (MIB - 2)
        r = rid + b",1.0,2.0,3.0,4.0"
    elif cls == "line_1mib_number": r = b"x_1mn,0.5" + b"0" * MIB + b",2.0,3.0,4.0"
    elif cls == "line_1mib_fields": r = b"x_1mf" + b",0" * (MIB // 2)
    elif cls == "line_16mib_max":  # exactly the longest record accepted, "\n" included
        head, tail = b"x_16m,0.5", b",2.0,3.0,4.0"
        r = head + b"0" * (16 * MIB - 1 - len(head) - len(tail)) + tail
    elif cls == "line_16mib_plus1":
        head, tail = b"x_16p,0.5", b",2.0,3.0,4.0"
        r = head + b"0" * (16 * MIB - len(head) - len(tail)) + tail
    elif cls == "line_64mib": r = b"x_64m,0.5" + b"0" * (64 * MIB) + b",2.0,3.0,4.0"
    elif cls == "unterminated_quote": r = b'x_q,"1.0,2.0,3.0,4.0'
    elif cls == "stray_quote": r = b'x_sq,1"0",2.0,3.0,4.0'
    elif cls == "text_after_quote": r = b'x_taq,"1.0"x,2.0,3.0,4.0'
    elif cls == "quoted_newline_id":
        r, rid = b'"x_q\nnl",1.0,2.0,3.0,4.0', b"x_q\nnl"
        k = r.index(b"\n") + 1  # the cut just after the newline inside the quotes
    elif cls == "escaped_quote_id": r, rid = b'"x_""q""",1.0,2.0,3.0,4.0', b'x_"q"'
    elif cls == "quoted_fields": r, rid = b'"x_qf","1.0","2.0","3.0","4.0"', b"x_qf"
    elif cls == "spaces_numbers": r, rid = b"x_sp, 1.5 ,\t2.0\t,3.0 ,  4.0", b"x_sp"
    elif cls == "crlf_row":
        r, term, rid = b"x_crlf,1.0,2.0,3.0,4.0", b"\r\n", b"x_crlf"
        k = len(r) + 1  # the cut between "\r" and "\n"
    elif cls == "blank_line": r, rid, k = b"", b"", 0
    elif cls == "cr_line": r, term, rid, k = b"\r", b"\n", b"", 1
    elif cls == "output_overflow": r = b"x_out,3e38,3e38,3e38,3e38"
    elif cls == "duplicate_id": r = None  # built by layout_rows
    else:
        return None
    if rid is None and r is not None:
        rid = r.split(b",", 1)[0]
    return r, term, k, rid


def svm_row(cls):
    term = b"\n"
    k = None
    rid = None
    if cls == "svm_index0_one_based": r = b"x_i0 0:1.0 2:2.0"
    elif cls == "svm_decreasing": r = b"x_dec 2:1.0 1:2.0"
    elif cls == "svm_out_of_range": r = b"x_oor 1:1.0 4:2.0"
    elif cls == "svm_duplicate_index": r = b"x_dup 1:1.0 1:2.0"
    elif cls == "svm_missing_colon": r = b"x_col 1:1.0 2 3:1.0"
    elif cls == "svm_negative_index": r = b"x_neg -1:1.0"
    elif cls == "svm_huge_index": r = b"x_hug 99999999999999999999:1.0"
    elif cls == "svm_index_float": r = b"x_if 1.5:1.0"
    elif cls == "svm_non_numeric": r = b"x_abc 1:abc"
    elif cls == "svm_nan": r = b"x_nan 1:nan"
    elif cls == "svm_1e999": r = b"x_big 1:1e999"
    elif cls == "svm_empty_value": r = b"x_ev 1:"
    elif cls == "svm_nul": r = b"x_nul 1:1.\x000"
    elif cls == "svm_no_pairs": r = b"x_np"
    elif cls == "svm_trailing_comment": r = b"x_tc 0:1.0 3:2.0 # a comment"
    elif cls == "svm_comment_line": r, rid = b"# a comment line", b""
    elif cls == "svm_blank_line": r, rid, k = b"", b"", 0
    elif cls == "svm_crlf": r, term, k = b"x_crlf 0:1.0 3:2.0", b"\r\n", len(b"x_crlf 0:1.0 3:2.0") + 1
    elif cls == "svm_non_utf8_id": r = b"x_\xff\xfe\xc3( 0:1.0"
    elif cls == "svm_line_1mib": r = b"x_1m 0:0.5" + b"0" * MIB
    elif cls == "svm_line_17mib": r = b"x_17m 0:0.5" + b"0" * (17 * MIB)
    else:
        return None
    if rid is None:
        rid = r.split(b" ", 1)[0]
    return r, term, k, rid


def pad(row, p):
    """p trailing blanks on a good row (after its last number: valid in both formats)."""
    row[0] += b" " * p


def write_files(d, files):
    for name, rows, prefix_bytes in files:
        with open(os.path.join(d, name), "wb") as f:
            f.write(prefix_bytes)
            for r in rows:
                f.write(r[0] + r[1])


def concat_offsets(files):
    """Global offset of each file (sorted by name, as split.c sorts paths)."""
    offs, o = {}, 0
    for name, rows, prefix in sorted(files, key=lambda f: f[0]):
        offs[name] = o
        o += len(prefix) + sum(len(r[0]) + len(r[1]) for r in rows)
    return offs, o


def row_offset(files, name, idx):
    offs, _ = concat_offsets(files)
    for n, rows, prefix in files:
        if n == name:
            return offs[name] + len(prefix) + sum(len(r[0]) + len(r[1]) for r in rows[:idx])
    raise KeyError(name)


def place_cut(files, name, idx, k, before, after):
    """Pads good rows `before` / `after` (rows, i.e. lists) until total//2 == start of row
    idx of file `name` + k: the -np 2 cut (split.c cut_at with 2 parts)."""
    for _ in range(8):
        _, total = concat_offsets(files)
        d = row_offset(files, name, idx) + k - total // 2
        if d == 0:
            return
        if d > 0:
            pad(after, 2 * d)
        else:
            pad(before, -2 * d)
    raise RuntimeError("cannot place the cut")


def layout_rows(d, cls, pos, fmt, one_based):
    ext = "csv" if fmt == "csv" else "svm"
    main = "data." + ext
    if fmt == "csv":
        good = good_csv("r", NGOOD, 11)
        spec = csv_row(cls)
    else:
        good = good_svm("r", NGOOD, 11, one_based)
        spec = svm_row(cls)
    prefix = HEADER + b"\n" if fmt == "csv" else b""
    specials = []
    if cls == "duplicate_id":
        # the damaged row repeats the id of a row that the other rank reads under -np 2
        src = {"first": 149, "last": 50, "split": NGOOD - 1, "split1m": NGOOD - 1}[pos]
        r = good[src][2] + b",0.5,0.5,0.5,0.5"
        spec = (r, b"\n", None, good[src][2])
    row, term, k, rid = spec
    at = {"first": 0, "last": NGOOD, "split": NGOOD // 2, "split1m": NGOOD // 2}[pos]
    special = [row, term, rid]
    rows = good[:at] + [special] + good[at:]
    files = [(main, rows, prefix)]
    if cls == "unterminated_quote":  # it swallows the rest of its file; the next file is read
        files.append(("z_tail.csv", good_csv("t", 50, 12), HEADER + b"\n"))
    if k is None:
        k = (len(row) + len(term)) // 2
    if pos == "split":
        place_cut(files, main, at, k, rows[0], files[-1][1][-1])
    elif pos == "split1m":
        start = row_offset(files, main, at)
        if start + k < MIB:
            pad(rows[0], MIB - (start + k))
        assert row_offset(files, main, at) < MIB < row_offset(files, main, at) + len(row) + len(term) or k == 0
    write_files(d, files)
    ids = [r[2] for _, rs, _ in files for r in rs if r[2]]
    if rid:
        specials.append(rid)
    return files, ids, specials


# --- file classes: a special file S beside two good files ------------------------------
def special_file(cls, fmt):
    """(name suffix, bytes, ids in S)."""
    if fmt == "csv":
        rows = good_csv("s", 100, 21)
        body = b"".join(r[0] + b"\n" for r in rows)
        ids = [r[2] for r in rows]
    else:
        rows = good_svm("s", 100, 21, False)
        body = b"".join(r[0] + b"\n" for r in rows)
        ids = [r[2] for r in rows]
    ext = ".csv" if fmt == "csv" else ".svm"
    hdr = HEADER + b"\n" if fmt == "csv" else b""
    gz = lambda b: gzip.compress(b, mtime=0)
    if cls in ("empty_file", "svm_empty_file"): return ext, b"", []
    if cls == "header_only": return ext, HEADER + b"\n", []
    if cls == "header_only_no_newline": return ext, HEADER, []
    if cls in ("bom", "svm_bom"): return ext, b"\xef\xbb\xbf" + hdr + body, ids
    if cls in ("no_trailing_newline", "svm_no_trailing_newline"): return ext, hdr + body[:-1], ids
    if cls == "crlf_file": return ext, (hdr + body).replace(b"\n", b"\r\n"), ids
    if cls == "header_reordered":
        out = [b"f3,f1,id,f0,f2"]
        for r in rows:
            f = r[0].split(b",")
            out.append(b",".join([f[4], f[2], f[0], f[1], f[3]]))
        return ext, b"\n".join(out) + b"\n", ids
    if cls == "header_missing_id": return ext, b"key" + HEADER[2:] + b"\n" + body, ids
    if cls == "header_extra_column":
        return ext, HEADER + b",extra\n" + body.replace(b"\n", b",7.0\n"), ids
    if cls in ("gzip_ok", "svm_gzip_ok"): return ext + ".gz", gz(hdr + body), ids
    if cls == "gzip_multimember":
        half = body.index(b"\n", len(body) // 2) + 1
        return ext + ".gz", gz(hdr + body[:half]) + gz(body[half:]), ids
    if cls in ("gzip_truncated", "svm_gzip_truncated"):
        z = gz(hdr + body)
        return ext + ".gz", z[:len(z) // 2], ids
    if cls == "gzip_corrupt":
        z = bytearray(gz(hdr + body))
        for i in range(len(z) // 2, len(z) // 2 + 8):
            z[i] ^= 0x55
        return ext + ".gz", bytes(z), ids
    if cls == "gzip_bad_crc":
        z = bytearray(gz(hdr + body))
        z[-8] ^= 0x01  # CRC-32 of the trailer
        return ext + ".gz", bytes(z), ids
    return None


def layout_files(d, cls, pos, fmt):
    ext = ".csv" if fmt == "csv" else ".svm"
    hdr = HEADER + b"\n" if fmt == "csv" else b""
    g1 = good_csv("r", 100, 11) if fmt == "csv" else good_svm("r", 100, 11, False)
    g2 = good_csv("r", 200, 11)[100:] if fmt == "csv" else good_svm("r", 200, 11, False)[100:]
    suffix, sbytes, sids = special_file(cls, fmt)
    names = {"first": ("b_good", "c_good", "a_special"), "last": ("a_good", "b_good", "c_special"),
             "split": ("a_good", "c_good", "b_special")}[pos]
    files = [(names[0] + ext, g1, hdr), (names[1] + ext, g2, hdr), (names[2] + suffix, [], sbytes)]
    if pos == "split":
        sname = names[2] + suffix
        offs, total = concat_offsets(files)
        for _ in range(8):
            offs, total = concat_offsets(files)
            dlt = offs[sname] + len(sbytes) // 2 - total // 2
            if dlt == 0:
                break
            if dlt > 0:
                pad(g2[-1], 2 * dlt)
            else:
                pad(g1[-1], -2 * dlt)
        assert dlt == 0
    write_files(d, files)
    return files, [r[2] for r in g1 + g2] + sids, []


# --- model classes ----------------------------------------------------------------------
def load_fixture(fixtures):
    import onnx
    return onnx.load(os.path.join(fixtures, "small_softmax.onnx"))


def model_case(d, cls, pos, fixtures):
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np
    src_path = os.path.join(fixtures, "small_softmax.onnx")
    raw = open(src_path, "rb").read()
    out = os.path.join(d, "model.onnx")

    def save_bytes(b):
        with open(out, "wb") as f:
            f.write(b)

    def save(m):
        save_bytes(m.SerializeToString())

    m = load_fixture(fixtures)
    g = m.graph
    node = {"first": 0, "mid": 1, "last": len(g.node) - 1}.get(pos)

    def set_init(name, arr, dims=None):
        for t in g.initializer:
            if t.name == name:
                t.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), name))
                if dims is not None:
                    del t.dims[:]
                    t.dims.extend(dims)

    def init(name):
        for t in g.initializer:
            if t.name == name:
                return numpy_helper.to_array(t)

    if cls == "model_truncated":
        save_bytes(raw[:{"first": 10, "mid": len(raw) // 2, "last": len(raw) - 1}[pos]])
    elif cls == "model_empty":
        save_bytes(b"")
    elif cls == "model_not_onnx":
        save_bytes(HEADER + b"\nr1,1,2,3,4\n")
    elif cls == "model_bitflip":
        # structural bytes of small_softmax.onnx (protobuf layout checked below):
        # first: ModelProto's first tag (ir_version) 0x08 -> 0x88, a field that swallows the
        # rest; mid: node Gemm_0's op_type "Gemm" -> "Geml"; last: the declared width of
        # input x, 4 -> 5
        b = bytearray(raw)
        off, bit = {"first": (0, 0x80), "mid": (70, 0x01), "last": (599, 0x01)}[pos]
        want = {"first": b"\x08", "mid": b"m", "last": b"\x04"}[pos]
        assert raw[off:off + 1] == want, (pos, raw[off:off + 1])
        b[off] ^= bit
        save_bytes(bytes(b))
    elif cls == "model_bitflip_weight":
        # the lowest mantissa bit of a float in fc1.weight (first), fc2.weight (mid),
        # fc2.bias (last): a valid model whose predictions barely move
        name = {"first": "fc1.weight", "mid": "fc2.weight", "last": "fc2.bias"}[pos]
        t = [t for t in g.initializer if t.name == name][0]
        data = t.raw_data
        off = raw.index(data)
        b = bytearray(raw)
        b[off + 4] ^= 0x01
        save_bytes(bytes(b))
    elif cls == "model_wrong_dims":
        if pos in ("first", "last"):
            w = 5 if pos == "first" else 3
            g.input[0].type.tensor_type.shape.dim[1].dim_value = w
            set_init("fc1.weight", np.resize(init("fc1.weight"), (8, w)))
        else:  # fc2.weight 3x7 against an 8-wide hidden layer
            set_init("fc2.weight", np.resize(init("fc2.weight"), (3, 7)))
        save(m)
    elif cls == "model_overflow_dims":
        if pos == "first":
            g.input[0].type.tensor_type.shape.dim[1].dim_value = 1 << 62
        elif pos == "mid":
            t = [t for t in g.initializer if t.name == "fc1.weight"][0]
            del t.dims[:]
            t.dims.extend([1 << 40, 1 << 40])
        else:
            t = [t for t in g.initializer if t.name == "fc2.bias"][0]
            del t.dims[:]
            t.dims.extend([(1 << 63) - 1])
        save(m)
    elif cls == "model_huge_activations":
        # x is 2^28 wide and feeds a Relu: 1024 rows of it are 1 TiB of activations
        wide = 1 << 28
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", wide])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", wide])
        gg = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="Relu_0")], "huge", [x], [y])
        save(helper.make_model(gg, opset_imports=[helper.make_opsetid("", 13)]))
    elif cls == "model_external_data":
        name, loc = {"first": ("fc1.weight", "../../etc/passwd"), "mid": ("fc2.weight", "/etc/passwd"),
                     "last": ("fc2.bias", "sub/../../../etc/passwd")}[pos]
        t = [t for t in g.initializer if t.name == name][0]
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", loc
        save(m)
    elif cls == "model_unknown_op":
        g.node[node].op_type = "FrobnicateOp"
        save(m)
    elif cls == "model_cycle":
        if pos == "first":    # Gemm_0 reads h1r, which Relu_1 makes from Gemm_0's h1
            g.node[0].input[0] = "h1r"
        elif pos == "mid":    # Relu_1 reads its own output
            g.node[1].input[0] = "h1r"
        else:                 # Softmax_3 reads its own output y
            g.node[3].input[0] = "y"
        save(m)
    elif cls == "model_undefined_input":
        g.node[node].input[0] = {"first": "x_undefined", "mid": "nope", "last": "zz"}[pos]
        save(m)
    else:
        raise ValueError("unknown model class " + cls)
    # the input every model case runs on
    rows = good_csv("r", NGOOD, 11)
    write_files(d, [("data.csv", rows, HEADER + b"\n")])
    return [r[2] for r in rows], []




def make_case(outdir, case, fixtures):
    name, cls, pos, fmt, settings = case["case"], case["class"], case["pos"], case["fmt"], case["set"]
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    one_based = "input.one_based=true" in settings
    model = os.path.join(fixtures, "small_softmax.onnx")
    if cls.startswith("model_"):
        ids, specials = model_case(d, cls, pos, fixtures)
        model, paths = "model.onnx", "data.csv"
    elif (fmt == "csv" and csv_row(cls) is not None) or (fmt == "libsvm" and svm_row(cls) is not None):
        files, ids, specials = layout_rows(d, cls, pos, fmt, one_based)
        paths = " ".join(sorted(f[0] for f in files))
    else:
        files, ids, specials = layout_files(d, cls, pos, fmt)
        paths = " ".join(sorted(f[0] for f in files))
    with open(os.path.join(d, "job.ini"), "w") as f:
        f.write("[model]\npath = %s\n[input]\npaths = %s\nformat = %s\n" % (model, paths, fmt))
        if fmt == "csv":
            f.write("id_column = id\n")
        f.write("[output]\ntable = table\n")
    with open(os.path.join(d, "ids.txt"), "w") as f:
        for i in ids:
            f.write(json_quote(i) + "\n")
    with open(os.path.join(d, "special.txt"), "w") as f:
        for i in specials:
            f.write(json_quote(i) + "\n")


def make_baseline(outdir, fixtures):
    """OUTDIR/_baseline: the 200 good rows every failing case's table starts from."""
    d = os.path.join(outdir, "_baseline")
    os.makedirs(d, exist_ok=True)
    write_files(d, [("data.csv", good_csv("r", NGOOD, 11), HEADER + b"\n")])
    with open(os.path.join(d, "job.ini"), "w") as f:
        f.write("[model]\npath = %s\n[input]\npaths = data.csv\n[output]\ntable = table\n"
                % os.path.join(fixtures, "small_softmax.onnx"))


def top_level_fields(raw):
    """(start, end, field number) of the top-level protobuf fields of a model file."""
    def varint(i):
        r = s = 0
        while True:
            c = raw[i]
            i += 1
            r |= (c & 0x7F) << s
            s += 7
            if c < 0x80:
                return r, i
    i, out = 0, []
    while i < len(raw):
        start = i
        tag, i = varint(i)
        wire = tag & 7
        if wire == 0:
            _, i = varint(i)
        elif wire == 2:
            n, i = varint(i)
            i += n
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError("wire type %d" % wire)
        out.append((start, i, tag >> 3))
    return out


def make_sweep(outdir, fixtures):
    """OUTDIR/_sweep: small_softmax.onnx with one bit flipped at every byte (bit = offset
    mod 8) and cut at every 4th length and around every top-level field boundary, for `precast inspect`; sweep.tsv lists each file with the
    exit statuses README allows: 78 (truncated or hostile model), or 0 for a file that is
    still a whole model (a flipped weight bit; a cut right after the graph that only loses
    opset_import), never anything else."""
    d = os.path.join(outdir, "_sweep")
    os.makedirs(d, exist_ok=True)
    raw = open(os.path.join(fixtures, "small_softmax.onnx"), "rb").read()
    fields = top_level_fields(raw)
    graph_end = [e for s, e, f in fields if f == 7][0]
    boundaries = {e for s, e, f in fields}
    with open(os.path.join(d, "sweep.tsv"), "w") as t:
        for off in range(len(raw)):
            b = bytearray(raw)
            b[off] ^= 1 << (off % 8)
            name = "flip-%04d.onnx" % off
            open(os.path.join(d, name), "wb").write(bytes(b))
            t.write("%s\t0,78\n" % name)
        near = {b + k for b in boundaries for k in (-1, 0, 1)}
        for n in range(len(raw)):
            if n % 4 and n not in near:
                continue
            name = "cut-%04d.onnx" % n
            open(os.path.join(d, name), "wb").write(raw[:n])
            t.write("%s\t%s\n" % (name, "0,78" if n in boundaries and n >= graph_end else "78"))


def read_cases(path):
    cols = None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        if cols is None:
            cols = f
            continue
        yield dict(zip(cols, f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("cases")
    ap.add_argument("fixtures")
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--sweep", action="store_true")
    a = ap.parse_args()
    a.fixtures = os.path.abspath(a.fixtures)
    if a.sweep:
        make_sweep(a.outdir, a.fixtures)
        return
    if a.only is None:
        make_baseline(a.outdir, a.fixtures)
    n = 0
    for c in read_cases(a.cases):
        if a.only is not None and c["case"] not in a.only:
            continue
        if c["class"] in BIG and not a.big and a.only is None:
            continue
        make_case(a.outdir, c, a.fixtures)
        n += 1
    print("%d cases written" % n)


if __name__ == "__main__":
    main()
