#!/usr/bin/env python3
"""Where the hydrate WASM's code goes: bytes of function bodies by crate, and by module of
ours, read from the module's name section (standard library only, no twiggy needed).

    make build
    python3 bench/wasm_sizes.py [target/front/wasm32-unknown-unknown/wasm-release/hydra_dashboard.wasm]

Read the module before wasm-bindgen and wasm-opt (the default path): the shipped
target/site/pkg/hydra-dashboard.wasm has no names. Sizes are before wasm-opt, so they
are shares, not the shipped bytes. A function is counted for the crate its symbol's path
starts with; a trait impl (`<T as Trait>::f`) for the crate of its type, else of its trait.
Generic code of Leptos' crates instantiated for our views counts as theirs: the rows of
ours are a floor of what our pages cost.
"""
import collections
import re
import sys

DEFAULT = "target/front/wasm32-unknown-unknown/wasm-release/hydra_dashboard.wasm"


def leb(b, i):
    value = shift = 0
    while True:
        x = b[i]
        i += 1
        value |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return value, i


def skip_limits(b, j):
    flags, j = leb(b, j)
    _, j = leb(b, j)
    if flags & 1:
        _, j = leb(b, j)
    return j


def functions(data):
    """(name, body bytes) of every function defined in the module."""
    if data[:4] != b"\0asm":
        sys.exit("not a WASM module")
    i, imported, sizes, names = 8, 0, [], {}
    while i < len(data):
        section = data[i]
        n, i = leb(data, i + 1)
        start, end = i, i + n
        if section == 2:  # imports: function indices start after the imported ones
            count, j = leb(data, start)
            for _ in range(count):
                for _ in range(2):  # module, field
                    length, j = leb(data, j)
                    j += length
                kind = data[j]
                j += 1
                if kind == 0:
                    _, j = leb(data, j)
                    imported += 1
                elif kind == 1:
                    j = skip_limits(data, j + 1)
                elif kind == 2:
                    j = skip_limits(data, j)
                else:
                    j += 2
        elif section == 10:  # code
            count, j = leb(data, start)
            for _ in range(count):
                size, j = leb(data, j)
                sizes.append(size)
                j += size
        elif section == 0:  # custom: the name section
            length, j = leb(data, start)
            if data[j:j + length] == b"name":
                j += length
                while j < end:
                    sub = data[j]
                    sub_len, j = leb(data, j + 1)
                    if sub == 1:
                        count, k = leb(data, j)
                        for _ in range(count):
                            index, k = leb(data, k)
                            length, k = leb(data, k)
                            names[index] = data[k:k + length].decode("utf8", "replace")
                            k += length
                    j += sub_len
        i = end
    if not names:
        sys.exit("no name section: read the module before wasm-opt (see --help)")
    return [(names.get(imported + n, "?"), size) for n, size in enumerate(sizes)]


def path(symbol):
    """The path components of a legacy-mangled Rust symbol (`_ZN4core3fmt5write17h…E`)."""
    if not symbol.startswith("_ZN"):
        return []
    parts, i = [], 3
    while i < len(symbol) and symbol[i].isdigit():
        m = re.match(r"\d+", symbol[i:])
        length, i = int(m.group()), i + len(m.group())
        parts.append(symbol[i:i + length])
        i += length
    return parts


def crate_of(symbol):
    if symbol.startswith("_R"):  # v0 mangling: the first crate root, `Cs<hash>_<len><name>`
        m = re.search(r"Cs[0-9A-Za-z]*_(\d+)", symbol)
        if not m:
            return "(other)"
        return symbol[m.end():m.end() + int(m.group(1))]
    parts = path(symbol)
    if not parts:
        return "(other)"
    first = parts[0]
    if first.startswith("_$LT$"):
        # <Type as Trait>::f: the type's crate when it names one, else the trait's (a
        # blanket impl over T, or over a tuple of views, is the trait's code).
        own = re.match(r"_\$LT\$(?:\$RF\$|mut\$u20\$)*([a-z_][a-z0-9_]*)\.\.", first)
        if own:
            return own.group(1)
        trait = re.search(r"\$u20\$as\$u20\$([a-z_][a-z0-9_]*)\.\.", first)
        return trait.group(1) if trait else "(impl)"
    return first


def main():
    data = open(sys.argv[1] if len(sys.argv) > 1 else DEFAULT, "rb").read()
    funcs = functions(data)
    total = sum(size for _, size in funcs)
    print(f"{len(funcs)} functions, {total:,} bytes of code before wasm-opt\n")
    by_crate = collections.Counter()
    ours = collections.Counter()
    for symbol, size in funcs:
        by_crate[crate_of(symbol)] += size
        parts = path(symbol)
        if parts and parts[0] == "hydra_dashboard":
            ours["::".join(parts[1:3])] += size
    print("by crate")
    for crate, size in by_crate.most_common(20):
        print(f"{size:>10,} {100 * size / total:5.1f}%  {crate}")
    print("\nours, by module (their generic code instantiated for ours is counted above)")
    for module, size in ours.most_common(20):
        print(f"{size:>10,} {100 * size / total:5.1f}%  {module}")


if __name__ == "__main__":
    main()
