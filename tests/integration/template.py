"""template.yaml for tests: a loader that tolerates CloudFormation tags, and a small resolver for the
intrinsic functions the template uses (Ref, Fn::Sub, Fn::Join, Fn::Split, Fn::GetAtt, Fn::If,
Fn::Base64)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

_TAGS = {"Ref": "Ref", "Condition": "Condition", "GetAtt": "Fn::GetAtt", "Sub": "Fn::Sub", "Join": "Fn::Join",
         "If": "Fn::If", "Not": "Fn::Not", "Equals": "Fn::Equals", "And": "Fn::And", "Or": "Fn::Or",
         "Base64": "Fn::Base64", "Select": "Fn::Select", "Split": "Fn::Split", "FindInMap": "Fn::FindInMap",
         "ImportValue": "Fn::ImportValue", "GetAZs": "Fn::GetAZs"}


class CfnLoader(yaml.SafeLoader):
    """yaml.SafeLoader that turns ``!Ref x`` into ``{"Ref": "x"}`` and so on."""


def _construct(fn: str):
    def build(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if fn == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {fn: value}
    return build


for _tag, _fn in _TAGS.items():
    CfnLoader.add_constructor(f"!{_tag}", _construct(_fn))


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in tpl["Resources"].items() if v["Type"] == kind}


class Resolver:
    """Evaluate intrinsic functions against parameter values and physical resource names/attributes."""

    def __init__(self, tpl: dict[str, Any], params: dict[str, Any], refs: dict[str, Any],
                 attrs: dict[tuple[str, str], Any] | None = None) -> None:
        self.tpl = tpl
        self.params = {k: v.get("Default") for k, v in tpl.get("Parameters", {}).items()} | params
        self.refs = refs
        self.attrs = attrs or {}

    def condition(self, name: str) -> bool:
        return bool(self(self.tpl["Conditions"][name]))

    def ref(self, name: str) -> Any:
        if name in self.params:
            value = self.params[name]
            if self.tpl["Parameters"].get(name, {}).get("Type") == "CommaDelimitedList" and isinstance(value, str):
                return value.split(",")
            return value
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"no value for Ref {name}")

    def __call__(self, node: Any) -> Any:
        if isinstance(node, list):
            out = [self(n) for n in node]
            return [o for o in out if o is not _NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return _NOVALUE if arg == "AWS::NoValue" else self.ref(arg)
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
                return self.sub(text, extra)
            if fn == "Fn::Join":
                sep, items = arg
                return sep.join(str(i) for i in self(items))
            if fn == "Fn::GetAtt":
                return self.attrs[(arg[0], arg[1])]
            if fn == "Fn::Split":
                sep, text = arg
                return str(self(text)).split(sep)
            if fn == "Fn::Base64":
                return base64.b64encode(str(self(arg)).encode()).decode()
            if fn == "Fn::If":
                cond, yes, no = arg
                return self(yes) if self.condition(cond) else self(no)
            if fn == "Fn::Equals":
                a, b = self(arg)
                return str(a) == str(b)
            if fn == "Fn::Not":
                return not self(arg[0])
            if fn == "Fn::And":
                return all(self(a) for a in arg)
            if fn == "Fn::Or":
                return any(self(a) for a in arg)
            if fn == "Condition":
                return self.condition(arg)
        out = {k: self(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _NOVALUE}

    def sub(self, text: str, extra: dict[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name:
                res, att = name.split(".", 1)
                return str(self.attrs[(res, att)])
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", repl, text)


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NOVALUE = _NoValue()


def function_specs(tpl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per function: code dir, handler file and attribute, environment (unresolved) merged with Globals."""
    glob = tpl.get("Globals", {}).get("Function", {})
    out = {}
    for name, res in resources(tpl, "AWS::Serverless::Function").items():
        props = res["Properties"]
        handler = props.get("Handler", glob.get("Handler"))
        module, attr = handler.rsplit(".", 1)
        code = ROOT / props["CodeUri"]
        env = dict(glob.get("Environment", {}).get("Variables", {}))
        env.update(props.get("Environment", {}).get("Variables", {}))
        out[name] = {"dir": code, "file": code / (module.replace(".", "/") + ".py"), "attr": attr,
                     "env": env, "runtime": props.get("Runtime", glob.get("Runtime")), "props": props}
    return out
