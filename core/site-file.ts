/**
 * Reading a site file as data. A site file arrives in a pull request, so none of its code runs: its
 * syntax tree must be at most one `import { defineSite } from "<relative path>/site"` and one
 * `export default` of `defineSite({...})` or an object literal, whose values are literals (strings,
 * numbers, booleans, null, templates without `${}`, arrays, objects with plain keys; `as const` and
 * `satisfies` allowed). The tree is then evaluated as data. Anything else is refused with its line.
 */
import ts from "typescript";
import { shownPath } from "./site";

/** Larger files are refused unread: a site file is a few dozen lines. */
export const MAX_SITE_FILE_BYTES = 64 * 1024;
/** Nesting deeper than this is refused (the schema's deepest field is four levels down). */
const MAX_DEPTH = 16;
const ALLOWED =
  "a site file holds one `import { defineSite }` and one `export default` of literal values";

export interface SiteFileProblem {
  /** Field path of the value where the problem is ("" for the file itself). */
  path: string;
  /** What is wrong, starting with the line. */
  message: string;
}

class Refused extends Error {
  constructor(
    readonly node: ts.Node | undefined,
    readonly at: string[],
    message: string,
  ) {
    super(message);
  }
}

/** The default export of a site file's text, evaluated as data, or the problems that stop it. */
export function readSiteFile(
  text: string,
  fileName: string,
): { value?: unknown; problems: SiteFileProblem[] } {
  if (Buffer.byteLength(text, "utf8") > MAX_SITE_FILE_BYTES) {
    return {
      problems: [
        { path: "", message: `is larger than ${MAX_SITE_FILE_BYTES / 1024} KiB; ${ALLOWED}` },
      ],
    };
  }
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const lineOf = (node: ts.Node | undefined): number =>
    node ? sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 : 1;
  const syntax = (sf as unknown as { parseDiagnostics?: ts.Diagnostic[] }).parseDiagnostics ?? [];
  if (syntax.length > 0) {
    const d = syntax[0];
    const line = sf.getLineAndCharacterOfPosition(d.start ?? 0).line + 1;
    const message = ts.flattenDiagnosticMessageText(d.messageText, " ");
    return { problems: [{ path: "", message: `line ${line}: syntax error: ${message}` }] };
  }
  try {
    return { value: evaluateFile(sf), problems: [] };
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    return {
      problems: [{ path: shownPath(err.at), message: `line ${lineOf(err.node)}: ${err.message}` }],
    };
  }
}

function evaluateFile(sf: ts.SourceFile): unknown {
  let imported = false;
  let exported: ts.Expression | undefined;
  for (const st of sf.statements) {
    if (ts.isEmptyStatement(st)) continue;
    if (ts.isImportDeclaration(st)) {
      if (imported) throw new Refused(st, [], `a second import is not allowed; ${ALLOWED}`);
      checkImport(st);
      imported = true;
    } else if (ts.isExportAssignment(st) && !st.isExportEquals && !st.modifiers?.length) {
      if (exported) throw new Refused(st, [], `a second default export is not allowed`);
      exported = st.expression;
    } else {
      throw new Refused(st, [], `${describe(st)} is not allowed; ${ALLOWED}`);
    }
  }
  if (!exported) {
    throw new Refused(
      undefined,
      [],
      "has no default export; write `export default defineSite({...})`",
    );
  }
  const top = unwrap(exported, []);
  if (ts.isCallExpression(top)) {
    const callee = top.expression;
    if (!ts.isIdentifier(callee) || callee.text !== "defineSite" || !imported) {
      throw new Refused(
        top,
        [],
        `only defineSite(...), imported from the site module, may be called`,
      );
    }
    if (top.typeArguments?.length || top.arguments.length !== 1) {
      throw new Refused(top, [], "defineSite takes exactly one object literal");
    }
    const arg = unwrap(top.arguments[0], []);
    if (!ts.isObjectLiteralExpression(arg)) {
      throw new Refused(arg, [], "defineSite takes exactly one object literal");
    }
    return evaluate(arg, [], 0);
  }
  if (!ts.isObjectLiteralExpression(top)) {
    throw new Refused(top, [], `the default export must be defineSite({...}) or an object literal`);
  }
  return evaluate(top, [], 0);
}

function checkImport(st: ts.ImportDeclaration): void {
  const clause = st.importClause;
  const spec = st.moduleSpecifier;
  const named = clause?.namedBindings;
  const only =
    clause !== undefined &&
    clause.name === undefined &&
    named !== undefined &&
    ts.isNamedImports(named) &&
    named.elements.length === 1 &&
    named.elements[0].propertyName === undefined &&
    !named.elements[0].isTypeOnly &&
    named.elements[0].name.text === "defineSite";
  const from =
    ts.isStringLiteral(spec) &&
    /^(\.\.?\/|\/)/.test(spec.text) &&
    /(^|\/)site(\.ts|\.js)?$/.test(spec.text) &&
    !st.attributes;
  if (!only || !from) {
    throw new Refused(
      st,
      [],
      'the only import allowed is `import { defineSite } from "<relative path>/site"`',
    );
  }
}

/** Drops parentheses, `as const` and `satisfies T`: none of them changes the value. */
function unwrap(node: ts.Expression, at: string[]): ts.Expression {
  let n = node;
  for (;;) {
    if (ts.isParenthesizedExpression(n)) n = n.expression;
    else if (ts.isSatisfiesExpression(n)) n = n.expression;
    else if (ts.isAsExpression(n)) {
      const t = n.type;
      if (!(
        ts.isTypeReferenceNode(t) &&
        ts.isIdentifier(t.typeName) &&
        t.typeName.text === "const"
      )) {
        throw new Refused(n, at, "only `as const` is allowed as a type assertion");
      }
      n = n.expression;
    } else return n;
  }
}

function evaluate(node: ts.Expression, at: string[], depth: number): unknown {
  if (depth > MAX_DEPTH) throw new Refused(node, at, `nesting deeper than ${MAX_DEPTH} levels`);
  const n = unwrap(node, at);
  if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return n.text;
  if (ts.isNumericLiteral(n)) return number(n, at, 1);
  if (
    ts.isPrefixUnaryExpression(n) &&
    n.operator === ts.SyntaxKind.MinusToken &&
    ts.isNumericLiteral(n.operand)
  ) {
    return number(n.operand, at, -1);
  }
  if (n.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (n.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (n.kind === ts.SyntaxKind.NullKeyword) return null;
  if (ts.isArrayLiteralExpression(n)) {
    return n.elements.map((e, i) => {
      if (ts.isSpreadElement(e) || ts.isOmittedExpression(e)) {
        throw new Refused(e, [...at, String(i)], `${describe(e)} is not allowed in an array`);
      }
      return evaluate(e, [...at, String(i)], depth + 1);
    });
  }
  if (ts.isObjectLiteralExpression(n)) {
    const out: Record<string, unknown> = {};
    for (const p of n.properties) {
      if (!ts.isPropertyAssignment(p)) {
        throw new Refused(
          p,
          at,
          `${describe(p)} is not allowed; write key: value with a literal value`,
        );
      }
      const key = keyOf(p.name);
      if (key === undefined) {
        throw new Refused(p, at, "a computed key is not allowed; write a plain name or a string");
      }
      if (key === "__proto__") throw new Refused(p, at, 'the key "__proto__" is not allowed');
      if (Object.hasOwn(out, key)) {
        throw new Refused(p, [...at, key], "is written twice; keep one");
      }
      out[key] = evaluate(p.initializer, [...at, key], depth + 1);
    }
    return out;
  }
  throw new Refused(n, at, `${describe(n)} is not allowed; only literal values are`);
}

function number(n: ts.NumericLiteral, at: string[], sign: 1 | -1): number {
  const v = Number(n.text);
  if (!Number.isFinite(v)) throw new Refused(n, at, `${n.getText()} is not a finite number`);
  return sign * v;
}

function keyOf(name: ts.PropertyName): string | undefined {
  if (ts.isIdentifier(name) || ts.isStringLiteral(name) || ts.isNoSubstitutionTemplateLiteral(name))
    return name.text;
  if (ts.isNumericLiteral(name)) return String(Number(name.text));
  return undefined;
}

/** What a node is, in words a site author knows. */
function describe(node: ts.Node): string {
  switch (node.kind) {
    case ts.SyntaxKind.CallExpression:
    case ts.SyntaxKind.NewExpression:
    case ts.SyntaxKind.TaggedTemplateExpression:
      return "a function call";
    case ts.SyntaxKind.TemplateExpression:
      return "a template with ${}";
    case ts.SyntaxKind.Identifier:
      return `the name ${node.getText()}`;
    case ts.SyntaxKind.PropertyAccessExpression:
    case ts.SyntaxKind.ElementAccessExpression:
      return `the reference ${node.getText().slice(0, 40)}`;
    case ts.SyntaxKind.SpreadElement:
    case ts.SyntaxKind.SpreadAssignment:
      return "a spread (...)";
    case ts.SyntaxKind.OmittedExpression:
      return "an empty array slot";
    case ts.SyntaxKind.ShorthandPropertyAssignment:
      return "a shorthand property";
    case ts.SyntaxKind.MethodDeclaration:
    case ts.SyntaxKind.GetAccessor:
    case ts.SyntaxKind.SetAccessor:
    case ts.SyntaxKind.ArrowFunction:
    case ts.SyntaxKind.FunctionExpression:
    case ts.SyntaxKind.FunctionDeclaration:
      return "a function";
    case ts.SyntaxKind.VariableStatement:
      return "a variable declaration";
    case ts.SyntaxKind.ExpressionStatement:
      return "a statement";
    case ts.SyntaxKind.ExportDeclaration:
    case ts.SyntaxKind.ExportAssignment:
      return "an export other than `export default`";
    case ts.SyntaxKind.ImportEqualsDeclaration:
      return "an import";
    default:
      return `${ts.SyntaxKind[node.kind].replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase()}`;
  }
}
