//! The one argument reader the subcommands share: `--name value`, `--name=value`, bare flags and
//! positional arguments, with the same error wording everywhere.

/// One argument of a subcommand's command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// `--name`, `--name value` or `--name=value`; the value is taken with [`Args::value`].
    Option(&'a str),
    /// Anything that does not start with `--`.
    Positional(&'a str),
}

/// Walks a subcommand's arguments in order.
pub struct Args<'a> {
    rest: std::slice::Iter<'a, String>,
    /// The `=value` part of the option just returned, if it had one.
    inline: Option<&'a str>,
    /// The option just returned, as the user wrote it (for error messages).
    current: &'a str,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Self {
        Args {
            rest: args.iter(),
            inline: None,
            current: "",
        }
    }

    /// The value of the option just returned: its `=value` part, else the next argument.
    /// An empty or missing value is an error.
    pub fn value(&mut self) -> Result<String, String> {
        let name = self
            .current
            .split_once('=')
            .map_or(self.current, |(n, _)| n);
        let v = match self.inline.take() {
            Some(v) => Some(v),
            None => self.rest.next().map(String::as_str),
        };
        match v {
            Some(v) if !v.is_empty() => Ok(v.to_string()),
            _ => Err(format!("{name} needs a value")),
        }
    }

    /// The value of the option just returned, parsed as a number.
    pub fn number<T: std::str::FromStr>(&mut self) -> Result<T, String> {
        let v = self.value()?;
        let name = self
            .current
            .split_once('=')
            .map_or(self.current, |(n, _)| n);
        v.parse()
            .map_err(|_| format!("{name}: not a number: {v:?}"))
    }

    /// Whether the option just returned was written with `=value` (a bare flag must not be).
    pub fn has_inline_value(&self) -> bool {
        self.inline.is_some()
    }

    /// The error for an option the subcommand does not know.
    pub fn unknown(&self, command: &str) -> String {
        format!("{command}: unknown option {:?}", self.current)
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = Arg<'a>;

    fn next(&mut self) -> Option<Arg<'a>> {
        let arg = self.rest.next()?.as_str();
        self.current = arg;
        self.inline = None;
        if !arg.starts_with("--") {
            return Some(Arg::Positional(arg));
        }
        match arg.split_once('=') {
            Some((name, value)) => {
                self.inline = Some(value);
                Some(Arg::Option(name))
            }
            None => Some(Arg::Option(arg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_take_inline_or_next_values_and_positionals_pass_through() {
        let v = strings(&["a.yaml", "--x=1", "--y", "2", "--flag", "b.yaml"]);
        let mut args = Args::new(&v);
        assert_eq!(args.next(), Some(Arg::Positional("a.yaml")));
        assert_eq!(args.next(), Some(Arg::Option("--x")));
        assert!(args.has_inline_value());
        assert_eq!(args.value(), Ok("1".to_string()));
        assert_eq!(args.next(), Some(Arg::Option("--y")));
        assert!(!args.has_inline_value());
        assert_eq!(args.number::<u32>(), Ok(2));
        assert_eq!(args.next(), Some(Arg::Option("--flag")));
        assert_eq!(args.next(), Some(Arg::Positional("b.yaml")));
        assert_eq!(args.next(), None);
    }

    #[test]
    fn missing_empty_and_unparsable_values_are_errors_naming_the_option() {
        let v = strings(&["--x="]);
        let mut args = Args::new(&v);
        args.next();
        assert_eq!(args.value(), Err("--x needs a value".to_string()));
        let v = strings(&["--n", "ten"]);
        let mut args = Args::new(&v);
        args.next();
        assert_eq!(
            args.number::<u64>(),
            Err("--n: not a number: \"ten\"".to_string())
        );
        let v = strings(&["--last"]);
        let mut args = Args::new(&v);
        args.next();
        assert_eq!(args.value(), Err("--last needs a value".to_string()));
        assert_eq!(args.unknown("audit"), "audit: unknown option \"--last\"");
    }
}
