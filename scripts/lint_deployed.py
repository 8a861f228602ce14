"""Write, for one deployment case, the nested templates as they are really deployed.

cfn-lint checks property values it can see; a value that reaches a resource through a
parameter (`EngineVersion: !Ref EngineVersion`) is not checked against what the root stack
passes. For each case (a parameter file, optionally with overrides) this script

  1. takes root.yaml's defaults, the case's values and sample values for the flags,
     checks them against root.yaml's parameter constraints and evaluates its Rules;
  2. evaluates root.yaml's Conditions and, for each nested stack the case creates,
     resolves the Parameters the root passes (Ref to a root parameter, Fn::If on a root
     condition, literals; outputs of other stacks stay unresolved);
  3. checks each resolved value against the nested template's parameter constraints;
  4. writes a copy of the nested template with the resolved values put in place of
     `Ref`/`${...}` in Resources and Outputs (Conditions keep their parameters, so that
     cfn-lint still sees every branch), and parameters no longer referenced removed.

Usage: lint_deployed.py OUT_DIR NAME PARAM_FILE [KEY=VALUE ...]
Prints the written files, one per line; exits 1 on a constraint or rule violation.
Run with the lint venv's python (cfn-lint's decoder reads the YAML short forms).
"""

import json
import re
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"

# What the flags of `bbbctl setup` and bbbctl itself fill in (sample values).
FLAG_VALUES = {
    "BBBOperatorEMail": "ops@example.org",
    "BBBDomainName": "bbb.example.org",
    "BBBHostedZone": "Z0123456789ABCDEFGHIJ",
    "TemplateBucket": "bbb-sources-example",
}
STACK_NAME = "bbb"
# Parameter types whose value is not what the resource receives (SSM resolves it).
KEEP_TYPES = ("AWS::SSM::Parameter::Value",)


def key_param(path: str):
    """templates/src/templates.rs key_param: `bbb-servers.yaml` -> `BbbServersTemplateKey`."""
    name = path.rsplit("/", 1)[-1]
    if name.endswith(".yaml"):
        stem, suffix = name[: -len(".yaml")], "TemplateKey"
    elif name.endswith(".sh"):
        stem, suffix = name[: -len(".sh")], "ScriptKey"
    elif name.endswith(".py"):
        stem, suffix = name[: -len(".py")], "CodeKey"
    else:
        return None
    words = [w for w in re.split(r"[-_]", stem) if w]
    return "".join(w[0].upper() + w[1:] for w in words) + suffix


def as_str(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def violations(name, spec, value):
    """The constraint violations of value for a parameter declaration."""
    out = []
    ptype = str(spec.get("Type", "String"))
    if ptype.startswith(KEEP_TYPES) or ptype.startswith("List<") or ptype == "CommaDelimitedList":
        return out
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [as_str(a) for a in allowed]:
        out.append(f"{name}={value!r} is not one of {[as_str(a) for a in allowed]}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        out.append(f"{name}={value!r} does not match {pattern}")
    if ptype == "Number":
        try:
            number = float(value)
        except ValueError:
            return out + [f"{name}={value!r} is not a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            out.append(f"{name}={value} is below MinValue {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            out.append(f"{name}={value} is above MaxValue {spec['MaxValue']}")
    else:
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            out.append(f"{name}={value!r} is shorter than MinLength {spec['MinLength']}")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            out.append(f"{name}={value!r} is longer than MaxLength {spec['MaxLength']}")
    return out


class Unresolved(Exception):
    pass


def evaluate(node, values, conditions):
    """Value of an intrinsic over known parameter values and condition results."""
    if isinstance(node, dict) and len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            if arg == "AWS::StackName":
                return STACK_NAME
            if arg in values:
                return values[arg]
            raise Unresolved(arg)
        if fn == "Condition":
            return conditions[arg]
        if fn == "Fn::Equals":
            return as_str(evaluate(arg[0], values, conditions)) == as_str(
                evaluate(arg[1], values, conditions)
            )
        if fn == "Fn::Not":
            return not evaluate(arg[0], values, conditions)
        if fn == "Fn::And":
            return all(evaluate(a, values, conditions) for a in arg)
        if fn == "Fn::Or":
            return any(evaluate(a, values, conditions) for a in arg)
        if fn == "Fn::If":
            branch = arg[1] if conditions[arg[0]] else arg[2]
            return evaluate(branch, values, conditions)
        raise Unresolved(fn)
    if isinstance(node, (dict, list)):
        raise Unresolved(type(node).__name__)
    return as_str(node)


def any_entry(node, hit):
    """Does hit(key, value) hold for some mapping entry anywhere in node?"""
    if isinstance(node, dict):
        return any(hit(k, v) or any_entry(v, hit) for k, v in node.items())
    if isinstance(node, list):
        return any(any_entry(v, hit) for v in node)
    return False


def references(node, name):
    """Does node refer to parameter name (Ref, or ${name} in a Sub)?"""
    def hit(key, value):
        if key == "Ref":
            return value == name
        if key == "Fn::Sub":
            text = value if isinstance(value, str) else value[0]
            return "${" + name + "}" in text
        return False
    return any_entry(node, hit)


def substitute(node, name, value, typed):
    """node with Ref name / ${name} replaced by value."""
    if isinstance(node, dict):
        if len(node) == 1 and node.get("Ref") == name:
            return typed
        out = {}
        for key, child in node.items():
            if key == "Fn::Sub" and isinstance(child, str):
                out[key] = child.replace("${" + name + "}", value)
            elif key == "Fn::Sub" and isinstance(child, list):
                variables = child[1] if len(child) > 1 else {}
                text = child[0]
                if name not in variables:
                    text = text.replace("${" + name + "}", value)
                rest = [substitute(c, name, value, typed) for c in child[1:]]
                out[key] = [text] + rest
            else:
                out[key] = substitute(child, name, value, typed)
        return out
    if isinstance(node, list):
        return [substitute(v, name, value, typed) for v in node]
    return node


NOVALUE = object()


def try_evaluate(node, values, known, conditions):
    """Like evaluate for a nested template's Conditions; None when it depends on an
    unresolved parameter."""
    if isinstance(node, dict) and len(node) == 1 and "Condition" in node:
        return condition(node["Condition"], values, known, conditions)
    if isinstance(node, dict) and len(node) == 1:
        (fn, arg), = node.items()
        if fn in ("Fn::Not", "Fn::And", "Fn::Or"):
            parts = [try_evaluate(a, values, known, conditions) for a in arg]
            if fn == "Fn::Not":
                return None if parts[0] is None else not parts[0]
            if fn == "Fn::And":
                return False if False in parts else (None if None in parts else True)
            return True if True in parts else (None if None in parts else False)
    try:
        return evaluate(node, values, {})
    except (Unresolved, KeyError):
        return None


def condition(name, values, known, conditions):
    if name not in known:
        known[name] = None  # guards against cycles
        known[name] = try_evaluate(conditions[name], values, known, conditions)
    return known[name]


def prune(node, known):
    """node with Fn::If on known conditions decided and AWS::NoValue removed."""
    if isinstance(node, dict):
        if node == {"Ref": "AWS::NoValue"}:
            return NOVALUE
        if len(node) == 1 and "Fn::If" in node and known.get(node["Fn::If"][0]) is not None:
            cond, yes, no = node["Fn::If"]
            return prune(yes if known[cond] else no, known)
        if len(node) == 1 and "Fn::If" in node:  # undecided: both branches stay, NoValue too
            cond, yes, no = node["Fn::If"]
            branches = [prune(b, known) for b in (yes, no)]
            return {"Fn::If": [cond] + [{"Ref": "AWS::NoValue"} if b is NOVALUE else b
                                        for b in branches]}
        out = {}
        for key, child in node.items():
            child = prune(child, known)
            if child is not NOVALUE:
                out[key] = child
        return out
    if isinstance(node, list):
        return [c for c in (prune(c, known) for c in node) if c is not NOVALUE]
    return node


def collapse_subs(node):
    """Fn::Sub with no variables left -> the plain string (cfn-lint W1020 otherwise)."""
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::Sub" in node:
            sub = node["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1] if len(sub) > 1 else {})
            if isinstance(text, str) and not variables and not re.search(r"\$\{[^!]", text):
                return text.replace("${!", "${")
        return {k: collapse_subs(v) for k, v in node.items()}
    if isinstance(node, list):
        return [collapse_subs(v) for v in node]
    return node


def uses_condition(node, name):
    """Does node use condition name (a Condition key, or the first argument of Fn::If)?"""
    return any_entry(node, lambda key, value: (key == "Condition" and value == name) or (
        key == "Fn::If" and isinstance(value, list) and bool(value) and value[0] == name))


def deployed(nested, passed_values):
    """The nested template as deployed with these parameter values (name -> str)."""
    params = nested.get("Parameters", {})
    values = {n: as_str(p["Default"]) for n, p in params.items() if "Default" in p}
    values.update(passed_values)
    for name in list(values):
        ptype = str(params.get(name, {}).get("Type", "String"))
        if name in unresolved_passed or ptype.startswith(KEEP_TYPES):
            values.pop(name)
    conditions = nested.get("Conditions", {})
    known = {}
    for name in conditions:
        condition(name, values, known, conditions)
    for section in ("Resources", "Outputs"):
        for logical_id in list(nested.get(section, {})):
            cond = nested[section][logical_id].get("Condition")
            if cond is None or known.get(cond) is None:
                continue
            if known[cond]:
                del nested[section][logical_id]["Condition"]
            else:
                del nested[section][logical_id]
    gone = set()
    for section in ("Resources", "Outputs"):
        if section in nested:
            nested[section] = prune(nested[section], known)
    for resource in nested.get("Resources", {}).values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if depends is not None:
            kept = [d for d in depends if d in nested["Resources"]]
            if kept:
                resource["DependsOn"] = kept
            else:
                resource.pop("DependsOn")
    for name, value in values.items():
        ptype = str(params.get(name, {}).get("Type", "String"))
        if ptype.startswith("List<") or ptype == "CommaDelimitedList":
            continue
        typed = value
        if ptype == "Number":
            typed = int(value) if re.fullmatch(r"-?\d+", value) else float(value)
        for section in ("Resources", "Outputs"):
            if section in nested:
                nested[section] = substitute(nested[section], name, value, typed)
    for section in ("Resources", "Outputs"):
        if section in nested:
            nested[section] = collapse_subs(nested[section])
    # Conditions no longer used anywhere, then parameters no longer referenced.
    changed = True
    while changed:
        changed = False
        for name in list(conditions):
            rest = {k: v for k, v in nested.items() if k != "Conditions"}
            others = {k: v for k, v in conditions.items() if k != name}
            if not uses_condition(rest, name) and not uses_condition(others, name):
                del conditions[name]
                changed = True
    if not conditions:
        nested.pop("Conditions", None)
    for name in list(params):
        rest = {k: v for k, v in nested.items() if k != "Parameters"}
        if not references(rest, name):
            del params[name]
        elif name in values:
            params[name]["Default"] = values[name]
    if not params:
        nested.pop("Parameters", None)
    del gone
    return nested


unresolved_passed = set()


def load(path):
    template, matches = decode(str(path))
    if matches:
        raise SystemExit(f"{path}: {matches}")
    return json.loads(json.dumps(template))


def main():
    out_dir, case, param_file = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    overrides = dict(arg.split("=", 1) for arg in sys.argv[4:])
    root = load(TEMPLATES / "root.yaml")
    errors = []

    values = {n: as_str(p["Default"]) for n, p in root["Parameters"].items() if "Default" in p}
    values.update(FLAG_VALUES)
    for name, spec in root["Parameters"].items():
        # bbbctl's content keys end in the file's whole sha256 (src/templates.rs).
        digest = "0123456789abcdef" * 4
        if name.endswith("TemplateKey"):
            values[name] = f"templates/sample-{digest}.yaml"
        elif name.endswith("ScriptKey"):
            values[name] = f"scripts/sample-{digest}.sh"
        elif name.endswith("CodeKey"):  # Lambda code: a zip (src/templates.rs asset)
            values[name] = f"scripts/sample-{digest}.zip"
    if param_file != "-":
        given = json.loads((ROOT / param_file).read_text())["Parameters"]
        values.update({k: as_str(v) for k, v in given.items()})
    values.update(overrides)
    ssm_typed = [n for n, p in root["Parameters"].items() if str(p.get("Type", "")).startswith(KEEP_TYPES)]
    for name, spec in root["Parameters"].items():
        if name in ssm_typed:
            continue
        if name not in values:
            errors.append(f"root.yaml: {name} has no value")
        else:
            errors += [f"root.yaml: {e}" for e in violations(name, spec, values[name])]

    for name in ssm_typed:
        values.pop(name, None)
    conditions = {}
    for name, expr in root.get("Conditions", {}).items():
        conditions[name] = evaluate(expr, values, conditions)
    for name, rule in root.get("Rules", {}).items():
        applies = "RuleCondition" not in rule or evaluate(rule["RuleCondition"], values, conditions)
        for assertion in rule.get("Assertions", []) if applies else []:
            if not evaluate(assertion["Assert"], values, conditions):
                errors.append(f"root.yaml rule {name}: {assertion.get('AssertDescription', '')}")

    by_param = {key_param(p.name): p for p in TEMPLATES.glob("*.yaml")}
    out_dir.mkdir(parents=True, exist_ok=True)
    for logical_id, resource in root["Resources"].items():
        if resource.get("Type") != "AWS::CloudFormation::Stack":
            continue
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        url = resource["Properties"]["TemplateURL"]["Fn::Sub"]
        key = re.search(r"\$\{(\w+TemplateKey)\}", url).group(1)
        path = by_param[key]
        nested = load(path)
        passed_values = {}
        unresolved_passed.clear()
        for name, passed in resource["Properties"].get("Parameters", {}).items():
            spec = nested.get("Parameters", {}).get(name)
            if spec is None:
                errors.append(f"{path.name}: {logical_id} passes {name}, which it does not declare")
                continue
            try:
                value = evaluate(passed, values, conditions)
            except Unresolved:
                unresolved_passed.add(name)  # an output of another stack, or SSM: deploy time
                continue
            errors += [f"{path.name} ({logical_id}): {e}" for e in violations(name, spec, value)]
            passed_values[name] = value
        nested = deployed(nested, passed_values)
        target = out_dir / f"{case}--{path.stem}.json"
        target.write_text(json.dumps(nested, indent=1))
        print(target)

    for error in errors:
        print(f"lint_deployed {case}: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
