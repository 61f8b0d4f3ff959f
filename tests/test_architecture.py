"""The package's shape: imports point along the data flow, no module imports itself back, options
read no files, and core errors name no flag.

Every import in src/versacodec (at module level or inside a function, type-checking ones too) is
an edge from the importing unit (a top-level module or folder) to the imported one. Units are
layered; a unit may import only units of a lower layer, so no two folders import each other:

    errors progress                                what goes wrong and how far long work is, for every layer
    registry paths fileio limits determinism tiling blocks version    tools with no codec knowledge
    modeling                                       save/from_pretrained of typed-config modules
    container entropy                              bytes: the stream format, the range coder
    imaging metrics bundle                         images in and out, measuring them, model folders
    latent_space latent_codec                      image ↔ latent ↔ coded latent
    pixel_decoders layers                          latent → pixels; palette layers of the latent
    generative semantics                           the diffusion decoder; tags, regions, task profiles
    options                                        settings as typed values (plain: no model, no files)
    codec                                          the loaded model, the codec joining the stages, the stream layout
    api                                            compress / decompress
    evaluation training                            applications built on the pipeline
    interfaces                                     command line, batch, web page, Pillow plugin
    versacodec __main__ pillow                     entry points

"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "versacodec"
LAYERS = [
    {"errors", "progress"},
    {"registry", "paths", "fileio", "limits", "determinism", "tiling", "blocks", "version"},
    {"modeling"},
    {"container", "entropy"},
    {"imaging", "metrics", "bundle"},
    {"latent_space", "latent_codec"},
    {"pixel_decoders", "layers"},
    {"generative", "semantics"},
    {"options"},
    {"codec"},
    {"api"},
    {"evaluation", "training"},
    {"interfaces"},
    {"versacodec", "__main__", "pillow"},
]
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}
# Modules whose messages speak to command-line users in their own flags.
COMMAND_LINES = ("interfaces/", "evaluation/cli.py", "__main__.py")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")


def unit_of(module: str) -> str:
    parts = module.split(".")
    return "versacodec" if len(parts) == 1 else parts[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> list[tuple[str, str, str]]:
    """(importing module, imported module, what), for every import of a versacodec module."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges += [(source, alias.name, alias.name) for alias in node.names
                          if alias.name.split(".")[0] == "versacodec"]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] == "versacodec":
                edges += [(source, node.module, alias.name) for alias in node.names]
    return edges


def unit_edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for source, target, _ in imports():
        pair = unit_of(source), unit_of(target)
        if pair[0] != pair[1]:
            edges.setdefault(pair, []).append(f"{source} imports {target}")
    return edges


def test_every_unit_has_a_layer():
    units = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir()
             if (path.suffix == ".py" or (path / "__init__.py").is_file()) and path.name != "__init__.py"}
    assert units | {"versacodec"} == set(RANK), "place new modules and folders in LAYERS above"


def test_no_import_cycle_between_folders():
    graph: dict[str, set[str]] = {}
    for source, target in unit_edges():
        graph.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(step == goal or (step not in seen and reaches(step, goal, seen | {step}))
                   for step in graph.get(start, ()))

    cycles = sorted(f"{a} ⇄ {b}" for a, b in unit_edges() if reaches(b, a, {b}))
    assert not cycles, cycles


def test_no_import_cycle_between_modules():
    """Within a folder too: no module imports one that imports it back, however indirectly (a
    registry names what it offers by "module:attribute" path instead)."""
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for source, target, what in imports():
        # `from versacodec.x import y` imports the module x.y when there is one, else x's name y.
        target = f"{target}.{what}" if f"{target}.{what}" in modules else target
        if source != target and target in modules:
            graph.setdefault(source, set()).add(target)

    def cycle_from(start: str) -> list[str] | None:
        path, stack = [start], [iter(sorted(graph.get(start, ())))]
        visited = {start}
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                path.pop()
            elif step == start:
                return [*path, start]
            elif step not in visited:
                visited.add(step)
                path.append(step)
                stack.append(iter(sorted(graph.get(step, ()))))
        return None

    cycles = [" → ".join(cycle) for module in sorted(graph) if (cycle := cycle_from(module))]
    assert not cycles, "\n".join(cycles)


def test_imports_point_along_the_data_flow():
    against = [f"{why} ({source}, layer {RANK[source]} → {target}, layer {RANK[target]})"
               for (source, target), reasons in sorted(unit_edges().items()) if RANK[target] >= RANK[source]
               for why in reasons[:1]]
    assert not against, "\n".join(against)


def test_options_are_plain_values_that_read_no_files():
    """`options.py` holds what a user asked for; what a model offers is read with the model
    (`codec.model.ModelDefaults`), so options know no bundle, config or weights file."""
    tree = ast.parse((PACKAGE / "options.py").read_text())
    reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name in {"open", "read_text", "read_bytes", "load", "safe_load"}:
                reads.append(f"options.py:{node.lineno}: {name}()")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module]
            reads += [f"options.py:{node.lineno}: imports {name}" for name in names
                      if name in {"json", "yaml", "safetensors", "versacodec.bundle", "versacodec.modeling"}
                      or name.startswith("versacodec.generative")]
    assert not reads, "\n".join(reads)


def test_the_codec_only_encodes_and_decodes():
    """Reading a bundle, the components, defaults and limits are the model's (`codec/model.py`);
    `Codec` keeps one verb for each direction and decoding's steps, and stays small."""
    tree = ast.parse((PACKAGE / "codec" / "pipeline.py").read_text())
    codec = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Codec")
    public = {node.name for node in codec.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}
    assert public == {"from_pretrained", "encode", "decode", "read", "decoded_latent", "output_latent"}
    assert codec.end_lineno - codec.lineno < 150


def test_core_errors_name_no_command_line_flag():
    """The core speaks of values and option names; the command line adds its flags
    (`VersacodecError.options`, interfaces.cli.FLAGS)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(COMMAND_LINES):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                for text in ast.walk(node.exc):
                    if isinstance(text, ast.Constant) and isinstance(text.value, str) and FLAG.search(text.value):
                        found.append(f"{relative}:{node.lineno}: {text.value!r}")
    assert not found, "\n".join(found)


def test_the_command_line_adds_flags_to_core_errors(tiny_bundle, tmp_path, capsys):
    from conftest import natural_image
    from versacodec.interfaces.cli import main

    natural_image().save(tmp_path / "in.png")
    assert main(["compress", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.vcx"), "--layers", "12",
                 "--model", str(tiny_bundle)]) == 2
    assert capsys.readouterr().err == "versacodec: error: layers must be between 2 and 9, not 12 (--layers)\n"
