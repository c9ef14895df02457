//! SQL injection: a linear tokeniser plus token-pattern rules, in the spirit of libinjection.
//!
//! The value is tokenised three ways: as written, and — when it contains that quote — as if it
//! started inside a `'...'` or `"..."` literal (the usual injection point: `name='<value>'`).
//! In a quoted context the first token is the "prefix string" the payload closes. Tokens go
//! through a fixed window (no per-token allocation, no backtracking): each rule looks at most
//! `WINDOW - 1` tokens ahead of its anchor. Comments are not tokens; they mark the token before
//! them (`comment_after`), which is how `/**/` as whitespace and `--` truncation are handled.
//!
//! Rule ids (sensitivity at which each applies):
//! - `sqli.tautology` (low+): a boolean operator then a comparison or a bare truthy operand
//!   after a literal or a quote breakout: `' or 1=1`, `1 and 2>1`, `') or ('a'='a`, `' or true--`.
//! - `sqli.union` (low+): `union [all|distinct] select` followed by what a column list looks
//!   like (number, string, `null`, `*`, function, `@@var`, `a,` or `a from`).
//! - `sqli.stacked` (low+): `;` then a statement: `drop table`, `delete from x`, `insert into`,
//!   `update x set`, `select <columns>`, `shutdown`, `exec xp_...`, `declare @`, `create|alter`.
//! - `sqli.time_based` (low+): `sleep(n)`, `pg_sleep(n)`, `benchmark(n,`, `waitfor delay`.
//! - `sqli.schema_probe` (low+): catalog names (`information_schema`, `sysobjects`,
//!   `pg_catalog`, `sqlite_master`, `@@version`, `xp_cmdshell`, ...), `into outfile`.
//! - `sqli.comment_truncation` (medium+): a quote breakout followed by a comment: `admin'--`.
//! - `sqli.function` (medium+): a boolean operator then an SQL function call after a literal or
//!   breakout: `' and extractvalue(1,...)`, `1 or ascii(substring(...))`.
//! - `sqli.subquery` (medium+): a boolean or comparison operator then `(select`.
//! - `sqli.clause` (medium+): a breakout then `order by n`, `group by`, `having`; `1 order by 5--`.
//! - `sqli.quote_breakout` (high): a breakout followed by any SQL keyword, `;` or operator.
//! - `sqli.function_call` (medium+): a function or object name of `vocab/sql-functions.txt`
//!   (or `extra.sql_functions`) that is not an English word, called (`name(`, also as the
//!   first or last part of a dotted name) anywhere: `ELT(8368=6547,9400)`, `IIF(1=1,1,1/0)`,
//!   `DBMS_PIPE.RECEIVE_MESSAGE(`.
//! - `sqli.case_when` (medium+): `case when <condition with a comparison or a call> then`.
//! - `sqli.nosql_operator` (medium+): a MongoDB query operator in bracket syntax in a name or
//!   value (`user[$ne]=1`, `filter[$regex]=.*`), or a server-side JavaScript operator
//!   (`$where`, `$function`, `$accumulator`) anywhere.
//!
//! The value is also tokenised as if it started inside a MySQL `` `identifier` `` (a
//! backtick breakout), and `where` anchors a condition as `and`/`or` do (`) AS x WHERE 1=1`).

use super::sensitivity::Sensitivity;
use super::text::{at, bits, contains_ci, is_ws, starts_ci, ByteSet, WordIndex, Words};
use super::vocab::{PatternSet, Vocab, Vocabularies};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kw {
    Or,
    And,
    Not,
    Union,
    AllDistinct,
    Select,
    From,
    Where,
    Insert,
    Into,
    Update,
    Set,
    Delete,
    Drop,
    Create,
    Alter,
    Truncate,
    Exec,
    Declare,
    Shutdown,
    Waitfor,
    Delay,
    Order,
    Group,
    By,
    Having,
    Like,
    Is,
    Null,
    Bool,
    Object,
    TimeFn,
    SqlFn,
    XpProc,
    Outfile,
    Other,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum K {
    Str,
    StrOpen,
    Num,
    W(Kw),
    Var,
    Cmp,
    Arith,
    Comma,
    Semi,
    LPar,
    RPar,
    Other,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    k: K,
    comment_after: bool,
}

const KEYWORDS: &[(&[u8], Kw)] = &[
    (b"or", Kw::Or),
    (b"and", Kw::And),
    (b"xor", Kw::Or),
    (b"div", Kw::Other),
    (b"not", Kw::Not),
    (b"union", Kw::Union),
    (b"all", Kw::AllDistinct),
    (b"distinct", Kw::AllDistinct),
    (b"select", Kw::Select),
    (b"from", Kw::From),
    (b"where", Kw::Where),
    (b"insert", Kw::Insert),
    (b"into", Kw::Into),
    (b"update", Kw::Update),
    (b"set", Kw::Set),
    (b"delete", Kw::Delete),
    (b"drop", Kw::Drop),
    (b"create", Kw::Create),
    (b"alter", Kw::Alter),
    (b"truncate", Kw::Truncate),
    (b"exec", Kw::Exec),
    (b"execute", Kw::Exec),
    (b"declare", Kw::Declare),
    (b"shutdown", Kw::Shutdown),
    (b"waitfor", Kw::Waitfor),
    (b"delay", Kw::Delay),
    (b"order", Kw::Order),
    (b"group", Kw::Group),
    (b"by", Kw::By),
    (b"having", Kw::Having),
    (b"like", Kw::Like),
    (b"rlike", Kw::Like),
    (b"regexp", Kw::Like),
    (b"between", Kw::Like),
    (b"in", Kw::Like),
    (b"is", Kw::Is),
    (b"null", Kw::Null),
    (b"true", Kw::Bool),
    (b"false", Kw::Bool),
    (b"table", Kw::Object),
    (b"database", Kw::Object),
    (b"schema", Kw::Object),
    (b"view", Kw::Object),
    (b"procedure", Kw::Object),
    (b"function", Kw::Object),
    (b"user", Kw::Object),
    (b"login", Kw::Object),
    (b"index", Kw::Object),
    (b"trigger", Kw::Object),
    (b"sleep", Kw::TimeFn),
    (b"pg_sleep", Kw::TimeFn),
    (b"benchmark", Kw::TimeFn),
    (b"randomblob", Kw::TimeFn),
    (b"outfile", Kw::Outfile),
    (b"dumpfile", Kw::Outfile),
];

const KEYWORD_INDEX: WordIndex = WordIndex::of_pairs(KEYWORDS);

const FUNCTIONS: Words = Words::new(&[
    b"char",
    b"chr",
    b"concat",
    b"concat_ws",
    b"group_concat",
    b"ascii",
    b"ord",
    b"substring",
    b"substr",
    b"mid",
    b"extractvalue",
    b"updatexml",
    b"version",
    b"database",
    b"current_user",
    b"system_user",
    b"session_user",
    b"cast",
    b"convert",
    b"count",
    b"hex",
    b"unhex",
    b"load_file",
    b"if",
    b"iif",
    b"ifnull",
    b"isnull",
    b"length",
    b"len",
    b"md5",
    b"rand",
    b"floor",
    b"exp",
    b"coalesce",
    b"nullif",
    b"unicode",
    b"nchar",
    b"db_name",
    b"user_name",
    b"char_length",
    b"elt",
    b"make_set",
    b"name_const",
    b"row",
    b"xmltype",
    b"json_keys",
    b"gtid_subset",
    b"exists",
    b"case",
]);

/// Catalog and file-access names no ordinary value contains.
const PROBES: Words = Words::new(&PROBE_LIST);

const PROBE_LIST: [&[u8]; 29] = [
    b"information_schema",
    b"sysobjects",
    b"syscolumns",
    b"sysdatabases",
    b"sys.objects",
    b"sys.tables",
    b"pg_catalog",
    b"pg_shadow",
    b"pg_read_file",
    b"sqlite_master",
    b"mysql.user",
    b"msysobjects",
    b"all_tab_columns",
    b"@@version",
    b"@@datadir",
    b"@@hostname",
    b"xp_cmdshell",
    b"sp_executesql",
    b"utl_http",
    b"utl_inaddr",
    b"dbms_pipe",
    b"load_file(",
    // DB2, Informix, Firebird and Access catalogs.
    b"sysibm.sys",
    b"syscat.",
    b"sysmaster:",
    b"rdb$database",
    b"rdb$relations",
    b"msysaccessobjects",
    b"sys.all_",
];

/// The last rule may look this many tokens ahead of its anchor.
const WINDOW: usize = 12;

enum Item {
    Tok(K),
    Comment,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    /// The quote whose literal the value starts inside, if any.
    prefix: Option<u8>,
}

/// Bytes of a name: ASCII letters and digits, `_`, `$`, and every byte of 0x80 and above.
#[inline]
fn is_ident(b: u8) -> bool {
    IDENT.contains(b)
}

/// [`is_ident`] as a table: one load per byte of every word the lexer reads, where the four
/// tests took several compares and branches.
const IDENT: ByteSet = ByteSet::new(&IDENT_BYTES);

// Constant evaluation: an index out of bounds stops the build.
#[allow(clippy::indexing_slicing)]
const IDENT_BYTES: [u8; 192] = {
    let mut out = [0u8; 192];
    let mut n = 0;
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
            out[n] = c;
            n += 1;
        }
        b += 1;
    }
    assert!(n == 192);
    out
};

/// Runs for every word of every value with SQL-ish punctuation, prose included: the indexes
/// compare a word only with the entries of its first byte and length.
fn classify(w: &[u8]) -> Kw {
    if let Some(k) = bits(KEYWORD_INDEX.candidates(w))
        .filter_map(|k| KEYWORDS.get(k))
        .find_map(|(n, k)| w.eq_ignore_ascii_case(n).then_some(*k))
    {
        return k;
    }
    if FUNCTIONS.contains_word(w) {
        return Kw::SqlFn;
    }
    if starts_ci(w, 0, b"xp_") || starts_ci(w, 0, b"sp_") {
        return Kw::XpProc;
    }
    Kw::Other
}

impl Lexer<'_> {
    /// The end of a quoted literal starting at `i` (the opening quote), and whether it closed.
    fn string_end(&self, i: usize, q: u8) -> (usize, bool) {
        let mut j = i;
        loop {
            match at(self.s, j) {
                None => return (j, false),
                Some(b'\\') => j += 2,
                Some(b) if b == q => {
                    if at(self.s, j + 1) == Some(q) {
                        j += 2;
                    } else {
                        return (j + 1, true);
                    }
                }
                Some(_) => j += 1,
            }
        }
    }

    fn next(&mut self) -> Option<Item> {
        if let Some(q) = self.prefix.take() {
            let (end, closed) = self.string_end(0, q);
            self.i = end;
            return Some(Item::Tok(if closed { K::Str } else { K::StrOpen }));
        }
        let s = self.s;
        while at(s, self.i).is_some_and(is_ws) {
            self.i += 1;
        }
        let i = self.i;
        let b = at(s, i)?;
        let b1 = at(s, i + 1);
        let (item, len) = match b {
            b'\'' | b'"' => {
                let (end, closed) = self.string_end(i + 1, b);
                (Item::Tok(if closed { K::Str } else { K::StrOpen }), end - i)
            }
            b'`' => {
                let (end, _) = self.string_end(i + 1, b);
                (Item::Tok(K::W(Kw::Other)), end - i)
            }
            b'/' if b1 == Some(b'*') => {
                if at(s, i + 2) == Some(b'!') {
                    // MySQL executable comment: its body is code. Skip the marker and version.
                    let digits = s
                        .get(i + 3..)
                        .map_or(0, |t| t.iter().take_while(|c| c.is_ascii_digit()).count());
                    self.i = i + 3 + digits;
                    return self.next();
                }
                let end = super::text::find_ci(s, b"*/", i + 2).map_or(s.len(), |e| e + 2);
                (Item::Comment, end - i)
            }
            b'*' if b1 == Some(b'/') => {
                self.i = i + 2;
                return self.next();
            }
            b'-' if b1 == Some(b'-') => (Item::Comment, line_end(s, i) - i),
            b'#' if at(s, i + 1).is_none_or(is_ws) => (Item::Comment, line_end(s, i) - i),
            b'0'..=b'9' => {
                let n = if b == b'0' && matches!(b1, Some(b'x' | b'X' | b'b' | b'B')) {
                    2 + s.get(i + 2..).map_or(0, |t| {
                        t.iter().take_while(|c| c.is_ascii_hexdigit()).count()
                    })
                } else {
                    s.get(i..).map_or(1, |t| {
                        t.iter()
                            .take_while(|c| c.is_ascii_digit() || **c == b'.')
                            .count()
                    })
                };
                (Item::Tok(K::Num), n)
            }
            b'@' => {
                let n = s.get(i..).map_or(1, |t| {
                    t.iter()
                        .take_while(|c| **c == b'@' || is_ident(**c))
                        .count()
                });
                (Item::Tok(K::Var), n)
            }
            b'=' => (Item::Tok(K::Cmp), if b1 == Some(b'=') { 2 } else { 1 }),
            b'<' | b'>' | b'!' => {
                let n = match (b, b1) {
                    (b'<', Some(b'=')) => {
                        if at(s, i + 2) == Some(b'>') {
                            3
                        } else {
                            2
                        }
                    }
                    (b'<', Some(b'>')) | (b'>', Some(b'=')) | (b'!', Some(b'=')) => 2,
                    _ => 1,
                };
                if b == b'!' && n == 1 {
                    (Item::Tok(K::W(Kw::Not)), 1)
                } else {
                    (Item::Tok(K::Cmp), n)
                }
            }
            b'|' if b1 == Some(b'|') => (Item::Tok(K::W(Kw::Or)), 2),
            b'&' if b1 == Some(b'&') => (Item::Tok(K::W(Kw::And)), 2),
            b':' if b1 == Some(b'=') => (Item::Tok(K::Cmp), 2),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' => {
                (Item::Tok(K::Arith), 1)
            }
            b',' => (Item::Tok(K::Comma), 1),
            b';' => (Item::Tok(K::Semi), 1),
            b'(' => (Item::Tok(K::LPar), 1),
            b')' => (Item::Tok(K::RPar), 1),
            c if is_ident(c) => {
                let n = s
                    .get(i..)
                    .map_or(1, |t| t.iter().take_while(|c| is_ident(**c)).count());
                let word = s.get(i..i + n).unwrap_or_default();
                (Item::Tok(K::W(classify(word))), n)
            }
            _ => (Item::Tok(K::Other), 1),
        };
        self.i = i + len.max(1);
        Some(item)
    }
}

fn line_end(s: &[u8], i: usize) -> usize {
    s.get(i..)
        .and_then(|t| t.iter().position(|&b| b == b'\n'))
        .map_or(s.len(), |p| i + p)
}

/// A read cursor over the token window.
struct Cur<'a> {
    t: &'a [Tok],
    i: usize,
    eos: bool,
}

impl Cur<'_> {
    fn peek(&self) -> Option<K> {
        self.t.get(self.i).map(|t| t.k)
    }
    fn bump(&mut self) -> Option<K> {
        let k = self.peek();
        self.i += 1;
        k
    }
    fn skip(&mut self, k: K) {
        while self.peek() == Some(k) {
            self.i += 1;
        }
    }
    fn skip_any(&mut self, ks: &[K]) {
        while self.peek().is_some_and(|k| ks.contains(&k)) {
            self.i += 1;
        }
    }
    /// At the true end of the value (not merely the end of the window).
    fn at_end(&self) -> bool {
        self.eos && self.i >= self.t.len()
    }
    /// The previous token was followed by a comment, or the value ends here.
    fn ends_statement(&self) -> bool {
        self.at_end()
            || self
                .i
                .checked_sub(1)
                .and_then(|p| self.t.get(p))
                .is_some_and(|t| t.comment_after)
            || self.peek() == Some(K::Semi)
    }
}

fn is_operand(k: K) -> bool {
    matches!(
        k,
        K::Num | K::Str | K::StrOpen | K::Var | K::W(Kw::Other | Kw::Bool | Kw::Null | Kw::Object)
    )
}

fn is_comparison(k: K) -> bool {
    matches!(k, K::Cmp | K::W(Kw::Like | Kw::Is))
}

fn is_logic(k: K) -> bool {
    matches!(k, K::W(Kw::Or | Kw::And))
}

/// What follows `select` in a real column list.
fn select_list(c: &mut Cur<'_>) -> bool {
    match c.bump() {
        Some(
            K::Num
            | K::Str
            | K::StrOpen
            | K::Var
            | K::LPar
            | K::Arith
            | K::W(Kw::Null | Kw::SqlFn | Kw::TimeFn | Kw::Bool | Kw::AllDistinct),
        ) => true,
        Some(K::W(Kw::Other | Kw::Object)) => {
            matches!(
                c.peek(),
                Some(K::Comma | K::LPar | K::W(Kw::From | Kw::Into))
            )
        }
        _ => false,
    }
}

/// After a boolean operator: what makes `or X` an injected condition rather than prose.
/// `strict` (the unquoted context) requires a literal comparison.
fn condition(c: &mut Cur<'_>, strict: bool, sens: Sensitivity) -> Option<&'static str> {
    c.skip_any(&[K::LPar, K::W(Kw::Not)]);
    if c.i > 0
        && c.t.get(c.i - 1).is_some_and(|t| t.k == K::LPar)
        && c.peek() == Some(K::W(Kw::Select))
    {
        return (sens >= Sensitivity::Medium).then_some("sqli.subquery");
    }
    let x = c.bump()?;
    match x {
        K::W(Kw::TimeFn) if c.peek() == Some(K::LPar) => {
            return (sens >= Sensitivity::Medium || !strict).then_some("sqli.time_based")
        }
        K::W(Kw::SqlFn) if c.peek() == Some(K::LPar) => {
            return (sens >= Sensitivity::Medium).then_some("sqli.function")
        }
        _ => {}
    }
    let literal = matches!(x, K::Num | K::Str | K::StrOpen | K::Var);
    if !is_operand(x) || (strict && !literal && sens < Sensitivity::High) {
        return None;
    }
    if c.peek().is_some_and(is_comparison) {
        c.bump();
        c.skip_any(&[K::W(Kw::Not), K::LPar]);
        let y = c.bump()?;
        return (is_operand(y) || matches!(y, K::W(Kw::SqlFn | Kw::Select)))
            .then_some("sqli.tautology");
    }
    let truthy = matches!(x, K::Num | K::Var | K::W(Kw::Bool));
    if truthy
        && (if strict {
            c.i > 0 && c.t.get(c.i - 1).is_some_and(|t| t.comment_after)
        } else {
            c.ends_statement() || c.peek() == Some(K::RPar)
        })
    {
        return Some("sqli.tautology");
    }
    None
}

fn union(c: &mut Cur<'_>, sens: Sensitivity) -> Option<&'static str> {
    c.skip(K::W(Kw::AllDistinct));
    c.skip(K::LPar);
    if c.bump()? != K::W(Kw::Select) {
        return None;
    }
    (sens >= Sensitivity::High || select_list(c)).then_some("sqli.union")
}

fn stacked(c: &mut Cur<'_>, sens: Sensitivity) -> Option<&'static str> {
    let stmt = c.bump()?;
    let hit = match stmt {
        K::W(Kw::Drop | Kw::Create | Kw::Alter | Kw::Truncate) => {
            matches!(c.peek(), Some(K::W(Kw::Object)))
        }
        K::W(Kw::Delete) => {
            c.bump() == Some(K::W(Kw::From))
                && matches!(c.bump(), Some(K::W(Kw::Other | Kw::Object)))
                && (c.ends_statement() || c.peek() == Some(K::W(Kw::Where)))
        }
        K::W(Kw::Insert) => {
            c.bump() == Some(K::W(Kw::Into))
                && matches!(c.peek(), Some(K::W(Kw::Other | Kw::Object)))
        }
        K::W(Kw::Update) => {
            matches!(c.bump(), Some(K::W(Kw::Other | Kw::Object)))
                && c.peek() == Some(K::W(Kw::Set))
        }
        K::W(Kw::Select) => select_list(c),
        K::W(Kw::Shutdown) => c.ends_statement(),
        K::W(Kw::Exec) => matches!(c.peek(), Some(K::W(Kw::XpProc) | K::LPar | K::Var)),
        K::W(Kw::Declare) | K::W(Kw::Set) => c.peek() == Some(K::Var),
        K::W(Kw::Waitfor) => {
            return (c.peek() == Some(K::W(Kw::Delay))).then_some("sqli.time_based")
        }
        K::W(k) => sens >= Sensitivity::High && k != Kw::Other,
        _ => false,
    };
    hit.then_some("sqli.stacked")
}

/// Rules anchored at the prefix string of a quoted context: the value closes a literal.
fn breakout(c: &mut Cur<'_>, sens: Sensitivity) -> Option<&'static str> {
    let medium = sens >= Sensitivity::Medium;
    // c is just after the prefix string.
    while c.peek() == Some(K::RPar) {
        if c.ends_statement() && medium {
            return Some("sqli.comment_truncation");
        }
        c.bump();
    }
    if medium && c.i > 0 && c.t.get(c.i - 1).is_some_and(|t| t.comment_after) {
        return Some("sqli.comment_truncation");
    }
    let next = c.peek()?;
    if next == K::Semi {
        c.bump();
        if medium && c.ends_statement() {
            return Some("sqli.comment_truncation");
        }
        return stacked(c, sens).or((sens >= Sensitivity::High).then_some("sqli.quote_breakout"));
    }
    if is_logic(next) {
        c.bump();
        if let Some(r) = condition(c, false, sens) {
            return Some(r);
        }
    } else if matches!(next, K::W(Kw::Order | Kw::Group)) {
        c.bump();
        if medium && c.bump() == Some(K::W(Kw::By)) && matches!(c.peek(), Some(K::Num | K::W(_))) {
            return Some("sqli.clause");
        }
    } else if next == K::W(Kw::Having) && medium {
        return Some("sqli.clause");
    }
    let keyword = matches!(next, K::W(k) if k != Kw::Other) || matches!(next, K::Cmp | K::Arith);
    (sens >= Sensitivity::High && keyword).then_some("sqli.quote_breakout")
}

/// All rules anchored at `t[0]`; `prev` is the token before the anchor (`None` at the start).
fn rules(
    t: &[Tok],
    prev: Option<K>,
    quoted: bool,
    eos: bool,
    sens: Sensitivity,
) -> Option<&'static str> {
    let start = prev.is_none();
    let first = t.first()?;
    let mut c = Cur { t, i: 1, eos };
    if start && quoted && matches!(first.k, K::Str | K::StrOpen) {
        if let Some(r) = breakout(&mut c, sens) {
            return Some(r);
        }
        c.i = 1;
    }
    // A value that starts with a boolean operator and a literal comparison: the injection
    // point follows a complete operand (`id=1` + ` and 1=1`, ` or 2=2 --`).
    if start && is_logic(first.k) && sens >= Sensitivity::Medium {
        if let Some(r) = condition(&mut c, true, sens) {
            return Some(r);
        }
        c.i = 1;
    }
    match first.k {
        K::W(Kw::Union) => union(&mut c, sens),
        K::Semi => stacked(&mut c, sens),
        K::W(Kw::TimeFn) => {
            // `sleep(5)`, `benchmark(9,`: an argument, then `)` or `,` (not "sleep (8 hours)").
            let call = c.bump() == Some(K::LPar)
                && match c.bump() {
                    Some(K::LPar) => true,
                    Some(K::Num | K::Str | K::StrOpen | K::Var) => {
                        matches!(c.peek(), Some(K::RPar | K::Comma | K::Arith))
                    }
                    _ => false,
                };
            call.then_some("sqli.time_based")
        }
        K::W(Kw::Waitfor) => (c.peek() == Some(K::W(Kw::Delay))).then_some("sqli.time_based"),
        K::W(Kw::Where) if sens >= Sensitivity::Medium => condition(&mut c, true, sens),
        K::W(Kw::Into) => (c.peek() == Some(K::W(Kw::Outfile))).then_some("sqli.schema_probe"),
        K::Num | K::Str | K::RPar | K::W(Kw::Other) => {
            // An unquoted literal condition (`1 or 1=1`) must start the value (after a sign):
            // in the middle of text, "5 > 3 and 2 < 4" is arithmetic prose.
            let left_ok = sens >= Sensitivity::High
                || first.k == K::RPar
                || (first.k != K::W(Kw::Other) && matches!(prev, None | Some(K::Arith)));
            match c.peek() {
                Some(k) if is_logic(k) && left_ok => {
                    c.bump();
                    condition(&mut c, true, sens)
                }
                Some(K::Cmp) if sens >= Sensitivity::Medium => {
                    c.bump();
                    (c.bump() == Some(K::LPar) && c.peek() == Some(K::W(Kw::Select)))
                        .then_some("sqli.subquery")
                }
                Some(K::W(Kw::Order)) if first.k == K::Num && sens >= Sensitivity::Medium => {
                    c.bump();
                    (c.bump() == Some(K::W(Kw::By))
                        && c.bump() == Some(K::Num)
                        && c.ends_statement())
                    .then_some("sqli.clause")
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Tokenises `s` in one context and runs the rules over a sliding window.
fn run(s: &[u8], prefix: Option<u8>, sens: Sensitivity) -> Option<&'static str> {
    const CAP: usize = WINDOW * 2;
    let empty = Tok {
        k: K::Other,
        comment_after: false,
    };
    let mut buf = [empty; CAP];
    let mut len = 0usize;
    let mut dropped: Option<K> = None;
    let quoted = prefix.is_some();
    let mut lx = Lexer { s, i: 0, prefix };
    while let Some(item) = lx.next() {
        match item {
            Item::Comment => {
                if let Some(t) = len.checked_sub(1).and_then(|p| buf.get_mut(p)) {
                    t.comment_after = true;
                }
            }
            Item::Tok(k) => {
                if len == CAP {
                    for a in 0..WINDOW {
                        let w = buf.get(a..len).unwrap_or_default();
                        let prev = prev_of(&buf, a, dropped);
                        if !may_anchor(w, prev) {
                            continue;
                        }
                        if let Some(r) = rules(w, prev, quoted, false, sens) {
                            return Some(r);
                        }
                    }
                    dropped = buf.get(WINDOW - 1).map(|t| t.k);
                    buf.copy_within(WINDOW.., 0);
                    len -= WINDOW;
                }
                if let Some(slot) = buf.get_mut(len) {
                    *slot = Tok {
                        k,
                        comment_after: false,
                    };
                }
                len += 1;
            }
        }
    }
    (0..len).find_map(|a| {
        let w = buf.get(a..len).unwrap_or_default();
        let prev = prev_of(&buf, a, dropped);
        may_anchor(w, prev)
            .then(|| rules(w, prev, quoted, true, sens))
            .flatten()
    })
}

/// Whether [`rules`] may report anything anchored at `t[0]`: at the value's start (`prev` is
/// `None`) always; elsewhere only at the tokens its `match` starts from, an operand only
/// before a boolean operator, a comparison or `order` (most tokens of prose are neither, and
/// skipping them saves a call each).
#[inline]
fn may_anchor(t: &[Tok], prev: Option<K>) -> bool {
    let Some(first) = t.first() else {
        return false;
    };
    prev.is_none()
        || match first.k {
            K::W(Kw::Union | Kw::TimeFn | Kw::Waitfor | Kw::Where | Kw::Into) | K::Semi => true,
            K::Num | K::Str | K::RPar | K::W(Kw::Other) => matches!(
                t.get(1).map(|n| n.k),
                Some(K::Cmp | K::W(Kw::Or | Kw::And | Kw::Order))
            ),
            _ => false,
        }
}

fn prev_of(buf: &[Tok], a: usize, dropped: Option<K>) -> Option<K> {
    match a.checked_sub(1) {
        Some(p) => buf.get(p).map(|t| t.k),
        None => dropped,
    }
}

/// The words whose tokens the rules of an unquoted context need (`rules` without a prefix
/// string): every such rule is anchored at `union`, `;`, `waitfor`, `into`, a time function
/// called with `(`, or an operand followed by a boolean operator (`or`, `xor`, `and`, `||`,
/// `&&`), by a comparison then `(`, or by `order`.
const UNQUOTED_ANCHORS: Words = Words::new(&[
    b"or", b"xor", b"and", b"union", b"waitfor", b"into", b"order", b"where",
]);

/// Whether tokenising `s` outside a string could give a rule its anchor: `;`, `(`, `|`, `&`,
/// or one of `UNQUOTED_ANCHORS` ending where a word token ends (the lexer's words run to the
/// last identifier byte). Without any, `run(s, None, _)` finds nothing, so ordinary URLs and
/// `key=value` text skip the tokeniser.
fn unquoted_rules_may_apply(s: &[u8], mask: u32) -> bool {
    use super::decode as d;
    mask & (d::SEMI | d::PAREN | d::PIPE | d::AMP) != 0
        || (0..s.len()).any(|i| {
            UNQUOTED_ANCHORS
                .prefixes_at(s, i)
                .any(|w| !at(s, i + w.len()).is_some_and(is_ident))
        })
}

/// The words (first word of each entry, see `inert.rs`) without which no rule here reports at
/// `medium` or below once quotes, backticks, `|`, `&&`, `#`, `--`, `/*`, `$`, `[` and `@@` are
/// ruled out: boolean operators, statements, time functions, clauses, `case`, the SQL
/// functions. Keywords that only continue a rule (`like`, `in`, `is`, `by`, `from`, `null`,
/// `table`, ...) are left out: the property tests generate values with them.
pub(super) fn trigger_words() -> [&'static [&'static [u8]]; 3] {
    [
        &[
            b"or",
            b"and",
            b"xor",
            b"div",
            b"not",
            b"union",
            b"select",
            b"insert",
            b"update",
            b"delete",
            b"drop",
            b"create",
            b"alter",
            b"truncate",
            b"exec",
            b"execute",
            b"declare",
            b"shutdown",
            b"waitfor",
            b"sleep",
            b"pg_sleep",
            b"benchmark",
            b"randomblob",
            b"outfile",
            b"dumpfile",
            b"order",
            b"group",
            b"having",
            b"where",
            b"into",
            b"when",
            b"then",
        ],
        UNQUOTED_ANCHORS.list(),
        &[],
    ]
}

/// Function names the rules read only when called (a `(` in the value).
pub(super) fn call_words() -> &'static [&'static [u8]] {
    FUNCTIONS.list()
}

/// Words the rules find inside other words: catalog names, `case`.
pub(super) fn substring_triggers() -> &'static [&'static [u8]] {
    // Constant evaluation: an index out of bounds stops the build.
    #[allow(clippy::indexing_slicing)]
    const ALL: [&[u8]; PROBE_LIST.len() + 1] = {
        let mut out: [&[u8]; PROBE_LIST.len() + 1] = [b"case"; PROBE_LIST.len() + 1];
        let mut k = 0;
        while k < PROBE_LIST.len() {
            out[k] = PROBE_LIST[k];
            k += 1;
        }
        out
    };
    &ALL
}

/// The rule id of the first SQL injection pattern in `s` (already decoded), if any.
fn sql_functions(v: &Vocabularies) -> &PatternSet {
    &v.sql_functions
}

/// A name of `vocab/sql-functions.txt` as a word, called: found from each `(` back over
/// blanks to the word before it (a value has few parentheses; prose words are never looked up).
fn function_call(s: &[u8], v: Vocab<'_>) -> bool {
    let mut from = 0;
    while let Some(p) = s
        .get(from..)
        .and_then(|t| t.iter().position(|&b| b == b'('))
    {
        let open = from + p;
        from = open + 1;
        let mut end = open;
        while end > 0 && at(s, end - 1).is_some_and(is_ws) && open - end < 8 {
            end -= 1;
        }
        let mut start = end;
        while start > 0
            && at(s, start - 1).is_some_and(|b| is_ident(b) || b == b'.')
            && end - start < 40
        {
            start -= 1;
        }
        // The last dotted part (`sys.fn_x`, `dbms_pipe.receive_message`) and the whole name.
        let name = s.get(start..end).unwrap_or_default();
        let last = name
            .iter()
            .rposition(|&b| b == b'.')
            .and_then(|d| name.get(d + 1..))
            .unwrap_or(name);
        let first = name.split(|&b| b == b'.').next().unwrap_or_default();
        if [name, last, first]
            .iter()
            .any(|w| !w.is_empty() && v.contains(sql_functions, w))
        {
            return true;
        }
    }
    false
}

/// `case when X then` with a comparison, a call or `select` in X (not the English "in case
/// when ... then").
fn case_when(s: &[u8]) -> bool {
    let mut from = 0;
    while let Some(p) = super::text::find_ci(s, b"case", from) {
        from = p + 4;
        if p > 0 && at(s, p - 1).is_some_and(is_ident) {
            continue;
        }
        let mut j = p + 4;
        while at(s, j).is_some_and(|b| is_ws(b) || b == b'(') {
            j += 1;
        }
        if j == p + 4 || !starts_ci(s, j, b"when") || at(s, j + 4).is_some_and(is_ident) {
            continue;
        }
        let cond_start = j + 4;
        let Some(t) = super::text::find_ci(s, b"then", cond_start) else {
            continue;
        };
        if t > cond_start + 200 {
            continue;
        }
        let cond = s.get(cond_start..t).unwrap_or_default();
        if cond.iter().any(|&b| matches!(b, b'=' | b'<' | b'>' | b'('))
            || contains_ci(cond, b"select")
        {
            return true;
        }
    }
    false
}

/// MongoDB query operators.
const NOSQL_OPERATORS: Words = Words::new(&[
    b"$ne",
    b"$eq",
    b"$gt",
    b"$gte",
    b"$lt",
    b"$lte",
    b"$in",
    b"$nin",
    b"$regex",
    b"$where",
    b"$expr",
    b"$exists",
    b"$or",
    b"$and",
    b"$not",
    b"$nor",
    b"$elemmatch",
    b"$function",
    b"$accumulator",
    b"$jsonschema",
]);

/// Operators that run JavaScript on the server: suspect wherever they appear.
const NOSQL_CODE: Words = Words::new(&[b"$where", b"$function", b"$accumulator"]);

/// A NoSQL operator in bracket syntax (`user[$ne]`, `filter[$gt]`: how a form or query
/// parameter name becomes an operator object in Express, PHP and Rails), or a JavaScript
/// operator anywhere. A bare `$gt` member name is how a JSON API that takes Mongo queries
/// talks, and is not reported.
fn nosql_operator(s: &[u8]) -> bool {
    let mut from = 0;
    while let Some(p) = s
        .get(from..)
        .and_then(|t| t.iter().position(|&b| b == b'$'))
    {
        let i = from + p;
        from = i + 1;
        let bracket = i > 0 && at(s, i - 1) == Some(b'[');
        let word = s.get(i..).map_or(0, |t| {
            1 + t
                .iter()
                .skip(1)
                .take_while(|b| b.is_ascii_alphabetic())
                .count()
        });
        if !bracket {
            if s.get(i..i + word)
                .is_some_and(|w| NOSQL_CODE.contains_word(w))
                && (i == 0 || !at(s, i - 1).is_some_and(is_ident))
            {
                return true;
            }
            continue;
        }
        let end = i
            + 1
            + s.get(i + 1..).map_or(0, |t| {
                t.iter().take_while(|b| b.is_ascii_alphabetic()).count()
            });
        if s.get(i..end)
            .is_some_and(|w| NOSQL_OPERATORS.contains_word(w))
            && matches!(at(s, end), None | Some(b']' | b'"' | b'\'' | b'.'))
        {
            return true;
        }
    }
    false
}

pub fn detect(s: &[u8], mask: u32, sens: Sensitivity, v: Vocab<'_>) -> Option<&'static str> {
    use super::decode as d;
    let strong = d::QUOTE
        | d::SEMI
        | d::HASH
        | d::PAREN
        | d::EQ
        | d::LT
        | d::GT
        | d::DASH2
        | d::STAR
        | d::AT2
        | d::PIPE
        | d::AMP
        | d::BACKTICK;
    let spaced = mask & (d::SPACE | d::NEWLINE) != 0;
    if sens >= Sensitivity::Medium && mask & d::DOLLAR != 0 && nosql_operator(s) {
        return Some("sqli.nosql_operator");
    }
    if mask & strong == 0 && !(spaced && contains_ci(s, b"union")) {
        return None;
    }
    if (mask & (d::AT2 | d::PAREN | d::SLASH) != 0
        || s.contains(&b'_')
        || contains_ci(s, b"schema"))
        && PROBES.occurs_in(s)
    {
        return Some("sqli.schema_probe");
    }
    if unquoted_rules_may_apply(s, mask) {
        if let Some(r) = run(s, None, sens) {
            return Some(r);
        }
    }

    for (q, bit) in [(b'\'', d::QUOTE), (b'"', d::QUOTE), (b'`', d::BACKTICK)] {
        if mask & bit != 0 && s.contains(&q) {
            if let Some(r) = run(s, Some(q), sens) {
                return Some(r);
            }
        }
    }
    let medium = sens >= Sensitivity::Medium;
    if medium && mask & d::PAREN != 0 && function_call(s, v) {
        return Some("sqli.function_call");
    }
    if medium && mask & (d::SPACE | d::PAREN) != 0 && case_when(s) {
        return Some("sqli.case_when");
    }
    let _ = is_ws;
    None
}

#[cfg(test)]
mod tests {
    use super::super::decode::scan;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ident_table_is_the_ident_test() {
        for b in 0..=u8::MAX {
            let want = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
            assert_eq!(is_ident(b), want, "{b:#x}");
        }
    }

    /// `classify` as it was written before the word indexes: a search through both lists.
    fn classify_reference(w: &[u8]) -> Kw {
        if let Some((_, k)) = KEYWORDS.iter().find(|(n, _)| w.eq_ignore_ascii_case(n)) {
            return *k;
        }
        if FUNCTIONS.list().iter().any(|n| w.eq_ignore_ascii_case(n)) {
            return Kw::SqlFn;
        }
        if starts_ci(w, 0, b"xp_") || starts_ci(w, 0, b"sp_") {
            return Kw::XpProc;
        }
        Kw::Other
    }

    /// SQL words in either case, cut or extended, and the punctuation the rules look at.
    fn sql_piece() -> impl Strategy<Value = Vec<u8>> {
        let mut words: Vec<&[u8]> = KEYWORDS.iter().map(|(w, _)| *w).collect();
        words.extend(FUNCTIONS.list());
        words.extend(PROBES.list());
        words.extend([
            &b" "[..],
            b"\xa0",
            b"\t",
            b";",
            b"(",
            b")",
            b"'",
            b"\"",
            b"=",
            b"<",
            b"1",
            b"0x1f",
            b"@v",
            b"@@",
            b"--",
            b"/*",
            b"*/",
            b"/*!",
            b"#",
            b"||",
            b"&&",
            b",",
            b"*",
            b"xp_",
            b"_",
            b"$",
            b"\xc3\xa9",
            b"s",
            b"o",
            b"d",
        ]);
        prop_oneof![
            proptest::sample::select(words.clone()).prop_map(<[u8]>::to_vec),
            proptest::sample::select(words.clone()).prop_map(|w| w.to_ascii_uppercase()),
            (proptest::sample::select(words), 0usize..4, any::<bool>()).prop_map(
                |(w, n, front)| {
                    let n = n.min(w.len());
                    if front {
                        w.get(n..).unwrap_or_default().to_vec()
                    } else {
                        [w, b"x_1".get(..n).unwrap_or_default()].concat()
                    }
                }
            ),
        ]
    }

    /// Every sentence of up to four tokens from a small SQL vocabulary (with and without a
    /// trailing comment): the prefilter lets through all that the unquoted rules report.
    #[test]
    fn unquoted_prefilter_on_short_sentences() {
        let vocabulary: [&str; 15] = [
            "1", "x", "or", "and", "union", "select", "order", "by", "into", "outfile", "waitfor",
            "delay", "=", "null", "shutdown",
        ];
        let mut sentences: Vec<String> = Vec::new();
        let mut level: Vec<String> = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|s| vocabulary.iter().map(move |w| format!("{s} {w}")))
                .collect();
            sentences.extend(level.iter().cloned());
        }
        let mut skipped = 0;
        for sentence in &sentences {
            for tail in ["", "--"] {
                let s = format!("{sentence}{tail}");
                if unquoted_rules_may_apply(s.as_bytes(), scan(s.as_bytes())) {
                    continue;
                }
                skipped += 1;
                for sens in Sensitivity::ALL {
                    assert_eq!(run(s.as_bytes(), None, sens), None, "{s:?}");
                }
            }
        }
        assert!(skipped > 1000, "{skipped}");
    }

    /// Every keyword class ([`every_kind`] checks the list against [`Kw`]).
    const KWS: [Kw; 36] = [
        Kw::Or,
        Kw::And,
        Kw::Not,
        Kw::Union,
        Kw::AllDistinct,
        Kw::Select,
        Kw::From,
        Kw::Where,
        Kw::Insert,
        Kw::Into,
        Kw::Update,
        Kw::Set,
        Kw::Delete,
        Kw::Drop,
        Kw::Create,
        Kw::Alter,
        Kw::Truncate,
        Kw::Exec,
        Kw::Declare,
        Kw::Shutdown,
        Kw::Waitfor,
        Kw::Delay,
        Kw::Order,
        Kw::Group,
        Kw::By,
        Kw::Having,
        Kw::Like,
        Kw::Is,
        Kw::Null,
        Kw::Bool,
        Kw::Object,
        Kw::TimeFn,
        Kw::SqlFn,
        Kw::XpProc,
        Kw::Outfile,
        Kw::Other,
    ];

    /// Every token kind, `W` with every keyword class.
    fn every_kind() -> Vec<K> {
        let mut kinds = vec![
            K::Str,
            K::StrOpen,
            K::Num,
            K::Var,
            K::Cmp,
            K::Arith,
            K::Comma,
            K::Semi,
            K::LPar,
            K::RPar,
            K::Other,
        ];
        kinds.extend(KWS.iter().map(|&kw| K::W(kw)));
        // No wildcard: a class added to `Kw` stops the build here until `KWS` lists it.
        for kw in KWS {
            match kw {
                Kw::Or
                | Kw::And
                | Kw::Not
                | Kw::Union
                | Kw::AllDistinct
                | Kw::Select
                | Kw::From
                | Kw::Where
                | Kw::Insert
                | Kw::Into
                | Kw::Update
                | Kw::Set
                | Kw::Delete
                | Kw::Drop
                | Kw::Create
                | Kw::Alter
                | Kw::Truncate
                | Kw::Exec
                | Kw::Declare
                | Kw::Shutdown
                | Kw::Waitfor
                | Kw::Delay
                | Kw::Order
                | Kw::Group
                | Kw::By
                | Kw::Having
                | Kw::Like
                | Kw::Is
                | Kw::Null
                | Kw::Bool
                | Kw::Object
                | Kw::TimeFn
                | Kw::SqlFn
                | Kw::XpProc
                | Kw::Outfile
                | Kw::Other => {}
            }
        }
        kinds
    }

    /// `run` calls the rules only where `may_anchor` says they may fire, which it decides
    /// from the anchor, the token after it and whether one comes before. Every pair of kinds
    /// as the anchor and its next token, followed by up to two tokens of the kinds that
    /// complete the rules (`union select`, `; drop table`, `sleep(5)`, `1 order by 1`,
    /// `into outfile`, `waitfor delay`, conditions, subqueries), in every context and at
    /// every sensitivity: wherever `may_anchor` says no, the rules report nothing.
    #[test]
    fn rules_report_nothing_where_they_may_not_anchor() {
        let kinds = every_kind();
        let tail_kinds = [
            K::Num,
            K::Cmp,
            K::LPar,
            K::RPar,
            K::W(Kw::Select),
            K::W(Kw::By),
            K::W(Kw::Object),
            K::W(Kw::From),
            K::W(Kw::Other),
            K::W(Kw::Outfile),
            K::W(Kw::Delay),
        ];
        let mut tails: Vec<Vec<K>> = vec![Vec::new()];
        for &x in &tail_kinds {
            tails.push(vec![x]);
            for &y in &tail_kinds {
                tails.push(vec![x, y]);
            }
        }
        let tok = |k: K| Tok {
            k,
            comment_after: false,
        };
        let mut skipped = 0usize;
        for &first in &kinds {
            for &second in &kinds {
                for prev in [Some(K::Arith), Some(K::W(Kw::Other))] {
                    let head = [tok(first), tok(second)];
                    if may_anchor(&head, prev) {
                        continue;
                    }
                    for tail in &tails {
                        let t: Vec<Tok> = head
                            .iter()
                            .copied()
                            .chain(tail.iter().map(|&k| tok(k)))
                            .collect();
                        for (quoted, eos) in
                            [(false, false), (false, true), (true, false), (true, true)]
                        {
                            for sens in Sensitivity::ALL {
                                skipped += 1;
                                assert_eq!(
                                    rules(&t, prev, quoted, eos, sens),
                                    None,
                                    "{t:?} after {prev:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
        assert!(skipped > 1_000_000, "{skipped}");
    }

    proptest! {
        #[test]
        fn classify_agrees_with_the_reference(w in sql_piece()) {
            prop_assert_eq!(classify(&w), classify_reference(&w));
        }

        #[test]
        fn probes_agree_with_a_search_per_probe(
            parts in proptest::collection::vec(sql_piece(), 0..8),
        ) {
            let s = parts.concat();
            prop_assert_eq!(
                PROBES.occurs_in(&s),
                PROBES.list().iter().any(|p| contains_ci(&s, p))
            );
        }

        /// The prefilter never hides a finding of the unquoted tokenisation: SQL words and
        /// numbers joined by blanks, comments and operators other than the bytes it lets
        /// through on their own (`;`, `(`, `|`, `&`).
        #[test]
        fn unquoted_prefilter_only_skips_clean_values(
            parts in proptest::collection::vec((
                prop_oneof![
                    sql_piece(),
                    proptest::sample::select(vec![
                        &b"1"[..], b"9", b"0x7e", b"@a", b"true", b"null", b"or", b"OR", b"and",
                        b"xor", b"union", b"select", b"all", b"order", b"by", b"group", b"having",
                        b"into", b"outfile", b"waitfor", b"delay", b"is", b"like", b"not", b"drop",
                        b"table", b"from", b"users", b"shutdown", b"x",
                    ])
                    .prop_map(<[u8]>::to_vec),
                ],
                proptest::sample::select(vec![
                    &b" "[..], b"", b"=", b"--", b"/**/", b"#", b"\n", b",", b"<", b"!=", b"-", b"'",
                ]),
            ), 0..8),
        ) {
            let s: Vec<u8> = parts.into_iter().flat_map(|(w, sep)| [w, sep.to_vec()]).flatten().collect();
            if !unquoted_rules_may_apply(&s, scan(&s)) {
                for sens in Sensitivity::ALL {
                    prop_assert_eq!(run(&s, None, sens), None, "{:?}", String::from_utf8_lossy(&s));
                }
            }
        }
    }

    fn check(s: &str, sens: Sensitivity) -> Option<&'static str> {
        detect(s.as_bytes(), scan(s.as_bytes()), sens, v())
    }

    fn v() -> Vocab<'static> {
        static EMPTY: std::sync::OnceLock<Vocabularies> = std::sync::OnceLock::new();
        Vocab {
            base: crate::screening::vocab::builtin(),
            extra: EMPTY.get_or_init(Vocabularies::default),
        }
    }

    #[test]
    fn detects_table() {
        let cases: &[(&str, &str)] = &[
            ("' or 1=1--", "sqli.tautology"),
            ("' OR '1'='1", "sqli.tautology"),
            ("admin' or 'a'='a", "sqli.tautology"),
            ("1 or 1=1", "sqli.tautology"),
            ("') or ('x'='x", "sqli.tautology"),
            ("\" or \"\"=\"", "sqli.tautology"),
            ("' or true--", "sqli.tautology"),
            ("1' and 1=0 union all select null,null--", "sqli.tautology"),
            ("1 union select 1,2,3", "sqli.union"),
            ("-1 UNION/**/SELECT user(),2", "sqli.union"),
            (
                "x' /*!50000union*/ /*!50000select*/ @@version",
                "sqli.schema_probe",
            ),
            ("0 /*!union*/ /*!select*/ password from users", "sqli.union"),
            ("1; drop table users", "sqli.stacked"),
            ("'; DELETE FROM accounts--", "sqli.stacked"),
            ("1;shutdown--", "sqli.stacked"),
            ("1; exec xp_regread", "sqli.stacked"),
            ("sleep(5)#", "sqli.time_based"),
            ("1' and benchmark(5000000,md5(1))--", "sqli.time_based"),
            ("'; waitfor delay '0:0:5'--", "sqli.time_based"),
            (
                "x' and 1=(select count(*) from information_schema.tables)--",
                "sqli.schema_probe",
            ),
            ("admin'--", "sqli.comment_truncation"),
            ("admin')#", "sqli.comment_truncation"),
            ("admin';--", "sqli.comment_truncation"),
            (
                "' and extractvalue(1,concat(0x7e,user()))--",
                "sqli.function",
            ),
            ("1 and ascii(substring(user(),1,1))>64", "sqli.function"),
            ("' or (select 1)", "sqli.subquery"),
            ("' order by 3--", "sqli.clause"),
            ("1 order by 10--", "sqli.clause"),
            ("' having 1=1--", "sqli.clause"),
        ];
        for (s, want) in cases {
            assert_eq!(check(s, Sensitivity::Medium), Some(*want), "{s}");
        }
    }

    #[test]
    fn benign_table() {
        for s in [
            "O'Brien",
            "D'Angelo and O'Brien",
            "Please select an option or drop us a line",
            "Tom or Jerry",
            "Pick 1 or 2",
            "Answer \"yes\" or \"no\"",
            "rock 'n' roll",
            "Use '#' for headers",
            "the union select committee",
            "We ship fast; update your address anytime",
            "Need more sleep (8 hours)",
            "It's 5 o'clock; let's go",
            "{\"a\": \"b\", \"c\": [1, 2]}",
            "Credit union. Select your branch",
            "5 > 3 and 2 < 4",
        ] {
            assert_eq!(check(s, Sensitivity::Medium), None, "{s}");
        }
    }

    #[test]
    fn sensitivity_changes_reach() {
        // Only high flags a breakout followed by any keyword.
        assert_eq!(check("x' like y", Sensitivity::Medium), None);
        assert_eq!(
            check("x' union y", Sensitivity::High),
            Some("sqli.quote_breakout")
        );
        // Comment truncation is medium and up.
        assert_eq!(check("admin'--", Sensitivity::Low), None);
        assert_eq!(check("' or 1=1", Sensitivity::Low), Some("sqli.tautology"));
    }

    #[test]
    fn long_values_slide_the_window() {
        // The pattern sits far beyond the first window.
        let s = format!("{} 1 union select 1,2", "a ".repeat(200));
        assert_eq!(check(&s, Sensitivity::Medium), Some("sqli.union"));
        let s = format!("{}' or 1=1", "(".repeat(100));
        assert_eq!(check(&s, Sensitivity::Medium), Some("sqli.tautology"));
    }
}
