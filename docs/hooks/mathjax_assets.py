"""Bundle MathJax into the site, so that the equations render with no network.

MathJax 3's single-file TeX-to-SVG build (every TeX extension inside, glyphs drawn as SVG
paths, so no font files and no further requests) comes from the pip package
``django-static-mathjax``, the MathJax distribution as a wheel (it needs no Django).
"""

from __future__ import annotations

from importlib import resources

from mkdocs.structure.files import File, Files

MATHJAX = "static/mathjax/es5/tex-svg-full.js"
SITE_PATH = "assets/mathjax/tex-svg-full.js"


def on_files(files: Files, config) -> Files:
    source = resources.files("mathjax") / MATHJAX
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: install the docs extra "
                                "(scripts/docs.sh does)")
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(source)))
    return files
