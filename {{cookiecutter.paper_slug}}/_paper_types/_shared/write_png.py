def write_png(path: Path, image: torch.Tensor) -> None:
    """Save a [H, W] tensor of values in [0, 1] as an 8-bit grey-scale PNG."""
    height, width = image.shape
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).tolist()
    # Each row starts with filter type 0 (none); the whole image is one zlib stream.
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
    Path(path).write_bytes(png + chunk(b"IEND", b""))
