"""Print the PEM certificates the host trusts that the image does not.

    python3 extra_ca.py HOST_BUNDLE IMAGE_BUNDLE OUT_DIR

Writes each missing certificate to OUT_DIR/host-ca-N.crt. Hosts behind a TLS
inspecting proxy (like our CI) trust its CA; images built there must as well,
or pip and apt inside them fail with CERTIFICATE_VERIFY_FAILED.
"""
import re
import sys
from pathlib import Path

PEM = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)


def certificates(path: str) -> list[str]:
    return PEM.findall(Path(path).read_text())


def main() -> None:
    host, image, out = sys.argv[1:4]
    known = {"".join(cert.split()) for cert in certificates(image)}
    extra = [cert for cert in certificates(host) if "".join(cert.split()) not in known]
    Path(out).mkdir(parents=True, exist_ok=True)
    for number, cert in enumerate(extra):
        Path(out, f"host-ca-{number}.crt").write_text(cert + "\n")
    print(len(extra))


if __name__ == "__main__":
    main()
