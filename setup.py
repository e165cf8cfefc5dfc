"""apitx packaging. Runtime needs requests, PyYAML and cryptography; see README "Dependencies"."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "apitx" / "__init__.py").read_text()).group(1)

setup(
    name="apitx",
    version=VERSION,
    description="A client for LXD and LXD-style JSON HTTP APIs over a Unix socket or HTTPS",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["apitx", "apitx.*"]),
    # py.typed: apitx's type hints are part of its interface (PEP 561).
    package_data={"apitx": ["py.typed"]},
    python_requires=">=3.9",
    install_requires=[
        "requests>=2.26,<3",
        "urllib3>=1.26,<3",
        # Remotes: config.yml is YAML, as lxc and incus write it (safe_load/safe_dump).
        "PyYAML>=5.4,<7",
        # Pinning and remote add: read certificates (basicConstraints, DER for
        # fingerprints) and make a client certificate; 39 added load_pem_x509_certificates.
        "cryptography>=39",
        # exec streams and events are websockets. websocket-client is
        # synchronous (no threads or event loop of its own) and takes a socket
        # apitx has already connected, so apitx's Unix-socket connect, TLS
        # settings, timeouts and errors carry over; 1.8 added nothing we lack,
        # but is the oldest release measured here (1.9.2 tested).
        "websocket-client>=1.8,<2",
    ],
    extras_require={
        # apitx.testing: record and replay LXD sessions. vcrpy's connection
        # stubs are internals that apitx.testing subclasses: pin what was proven.
        "testing": ["vcrpy>=7,<10"],
        "test": [
            "vcrpy>=7,<10",
            "pytest>=7",
            "hypothesis>=6",
            # Only the benchmark and a comparison test use it: apitx's own
            # transport replaces it (README, "Dependencies").
            "requests-unixsocket>=0.4,<0.5",
            # The static checks scripts/test runs before pytest.
            "import-linter>=2.1,<3",
            "mypy>=1.8",
            "ruff>=0.4",
            "types-requests",
            "types-PyYAML",  # apitx._remotes reads and writes config.yml
        ],
    },
    # The `apitx` command (also `python -m apitx`).
    entry_points={"console_scripts": ["apitx=apitx._cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Operating System :: POSIX :: Linux",
        "Topic :: System :: Systems Administration",
    ],
)
