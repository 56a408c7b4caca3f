"""One module per answer type. Each module exposes the verifier contract:

    Options                                   frozen dataclass of knobs, all defaulted,
                                              subclassing `base.BaseOptions`
    extract(response, options, context)       -> str | None   (cheap, linear-time text work;
                                                               runs in the server process)
    compare(extracted, reference, options, context) -> Verdict (may be slow or heavy;
                                                               runs in a killable worker)

Heavy libraries (sympy, cairosvg, playwright) are imported inside `compare` or helpers it
calls, so that listing the registry stays cheap.
"""
