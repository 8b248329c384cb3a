"""Zero every fatbin entry except the sm_<ARCH> cubins, so the .so compresses small.

Usage: prune_fatbin.py IN.so OUT.so 90
Containers with no sm_<ARCH> cubin are left untouched.
"""

import struct
import sys

src, dst, arch = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = bytearray(open(src, "rb").read())
MAGIC = struct.pack("<I", 0xBA55ED50)
pos = 0
stats = dict(containers=0, pruned=0, kept=0, zeroed_bytes=0, untouched=0)
archs = {}
while True:
    pos = data.find(MAGIC, pos)
    if pos < 0:
        break
    magic, ver, hsize, fsize = struct.unpack_from("<IHHQ", data, pos)
    if ver != 1 or hsize != 16 or fsize == 0 or pos + 16 + fsize > len(data):
        pos += 4
        continue
    entries = []
    e = pos + hsize
    end = pos + hsize + fsize
    ok = True
    while e < end:
        kind, _u, ehs, size = struct.unpack_from("<HHIQ", data, e)
        if kind not in (1, 2) or ehs < 64 or e + ehs + size > end:
            ok = False
            break
        earch = struct.unpack_from("<I", data, e + 28)[0]
        entries.append((kind, earch, e + ehs, size))
        archs[(kind, earch)] = archs.get((kind, earch), 0) + 1
        e += ehs + size
    if not ok:
        pos += 4
        continue
    stats["containers"] += 1
    if any(k == 2 and a == arch for k, a, _, _ in entries):
        for k, a, off, size in entries:
            if k == 2 and a == arch:
                stats["kept"] += 1
            else:
                data[off : off + size] = bytes(size)
                stats["pruned"] += 1
                stats["zeroed_bytes"] += size
    else:
        stats["untouched"] += 1
    pos = end
open(dst, "wb").write(data)
print(stats)
print(sorted(archs.items()))
