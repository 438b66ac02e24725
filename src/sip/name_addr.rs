//! The one reader of name-addr / addr-spec header values (To, From,
//! Contact, Route, Record-Route) for the SIP core.
//!
//! RFC 3261 §20.10 / §25.1: `( name-addr / addr-spec ) *( SEMI param )`,
//! where `name-addr = [ display-name ] LAQUOT addr-spec RAQUOT` and both the
//! display name and a parameter value may be a quoted-string, in which `<`,
//! `>`, `;`, `,` and `\"` are plain text. Phones put exactly that in their
//! Contacts: RFC 5626's `+sip.instance="<urn:uuid:…>"` and RFC 5627's
//! `pub-gruu="sip:…;gr=…"`. Looking for the last `>` (as we once did) finds
//! the one inside the quotes and turns the rest into a malformed Request-URI.
//!
//! The gate (`inspect`) has already checked each value against the strict
//! grammar (`grammar::parse_name_addr`); this reader only needs to find the
//! boundaries, cheaply and without allocating, and never panics on anything.

/// One header value split into its parts, borrowed from the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name as written (quotes and escapes kept), if any.
    pub display: Option<&'a str>,
    /// The URI, without angle brackets.
    pub uri: &'a str,
    /// Everything before the header parameters: display name and `<uri>`
    /// (or the bare addr-spec) as written.
    pub head: &'a str,
    /// The header parameters as written, from the first `;` (or empty).
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    /// Reads `value`; never fails (what it cannot make sense of ends up in
    /// `uri`, which the caller then fails to use).
    pub fn read(value: &'a str) -> Self {
        let s = value.trim();
        match unquoted_find(s, b'<') {
            Some(open) => {
                let after = s.get(open + 1..).unwrap_or("");
                // A URI holds no `>` and no quotes (§25.1: they are not in
                // any URI character class), so the first `>` closes it.
                let (uri, rest_at) = match after.find('>') {
                    Some(close) => (&after[..close], open + 1 + close + 1),
                    None => (after, s.len()),
                };
                let display = s.get(..open).map(str::trim).filter(|d| !d.is_empty());
                let head = s.get(..rest_at).unwrap_or(s);
                let rest = s.get(rest_at..).unwrap_or("").trim_start();
                NameAddr {
                    display,
                    uri: uri.trim(),
                    head,
                    params: rest,
                }
            }
            None => {
                // §20: an addr-spec outside `<>` ends at its first `;`,
                // which starts the header parameters.
                let end = s.find(';').unwrap_or(s.len());
                NameAddr {
                    display: None,
                    uri: s[..end].trim(),
                    head: &s[..end],
                    params: &s[end..],
                }
            }
        }
    }

    /// The header parameters in order: name and value as written (a quoted
    /// value keeps its quotes); `None` for a parameter without `=`.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
        split_unquoted(self.params, b';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (p, None),
            })
    }

    /// The value of header parameter `name` (case-insensitive, §7.3.1);
    /// `Some("")` for a parameter written without a value.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.unwrap_or(""))
    }
}

/// The byte offset of the first `needle` outside a quoted-string.
fn unquoted_find(s: &str, needle: u8) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            // §25.1 quoted-pair: the next character is literal, `"` included.
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if !quoted && b == needle {
            return Some(i);
        }
    }
    None
}

/// `s` split at every `sep` outside a quoted-string.
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let r = rest?;
        match unquoted_find(r, sep) {
            Some(i) => {
                rest = r.get(i + 1..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 9: linphone's Contact (RFC 5626 instance id in a quoted
    /// parameter) gave the BYE a Request-URI ending in `…>;+sip.instance="<urn…`.
    #[test]
    fn rfc5626_instance_in_quotes() {
        let v = r#"<sip:127.0.0.1:40326;transport=udp>;+sip.instance="<urn:uuid:d5f18820-4b8e-4a2c-9a6a-1b2c3d4e5f60>""#;
        let na = NameAddr::read(v);
        assert_eq!(na.uri, "sip:127.0.0.1:40326;transport=udp");
        assert_eq!(na.display, None);
        assert_eq!(
            na.param("+sip.instance"),
            Some(r#""<urn:uuid:d5f18820-4b8e-4a2c-9a6a-1b2c3d4e5f60>""#)
        );
        let v = r#"<sip:line1@192.0.2.2;transport=tcp>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";expires=3600"#;
        let na = NameAddr::read(v);
        assert_eq!(na.uri, "sip:line1@192.0.2.2;transport=tcp");
        assert_eq!(na.param("reg-id"), Some("1"));
        assert_eq!(na.param("expires"), Some("3600"));
    }

    /// RFC 5627 §5 / §6: a GRUU as the Contact URI (`;gr=`) and the
    /// `pub-gruu` / `temp-gruu` parameters in a REGISTER response.
    #[test]
    fn rfc5627_gruu() {
        let v = "<sip:callee@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
        assert_eq!(
            NameAddr::read(v).uri,
            "sip:callee@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        let v = r#"<sip:callee@192.0.2.1>;pub-gruu="sip:callee@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";temp-gruu="sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.com;gr";+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";expires=3600"#;
        let na = NameAddr::read(v);
        assert_eq!(na.uri, "sip:callee@192.0.2.1");
        assert_eq!(
            na.param("pub-gruu"),
            Some(r#""sip:callee@example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6""#)
        );
        assert_eq!(
            na.param("temp-gruu"),
            Some(r#""sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.com;gr""#)
        );
        assert_eq!(na.param("expires"), Some("3600"));
    }

    /// §25.1: a quoted display name may hold `<`, `>`, `;`, `,` and an
    /// escaped `\"`.
    #[test]
    fn quoted_display_names() {
        let v = r#""Sales <desk> \"B;C\", UK" <sip:+442079460000@192.0.2.9>;tag=a1"#;
        let na = NameAddr::read(v);
        assert_eq!(na.display, Some(r#""Sales <desk> \"B;C\", UK""#));
        assert_eq!(na.uri, "sip:+442079460000@192.0.2.9");
        assert_eq!(na.param("tag"), Some("a1"));
        assert_eq!(
            na.head,
            r#""Sales <desk> \"B;C\", UK" <sip:+442079460000@192.0.2.9>"#
        );
        let na = NameAddr::read(r#""\\" <sip:x@y>;tag=2"#);
        assert_eq!(na.uri, "sip:x@y");
        assert_eq!(na.param("tag"), Some("2"));
        let na = NameAddr::read("Bob Smith <sip:bob@x;tag=inside>;tag=outside");
        assert_eq!(na.display, Some("Bob Smith"));
        assert_eq!(na.uri, "sip:bob@x;tag=inside");
        assert_eq!(na.param("tag"), Some("outside"));
    }

    #[test]
    fn addr_spec_without_brackets() {
        let na = NameAddr::read(" sip:bob@x;tag=9;lr ");
        assert_eq!(na.uri, "sip:bob@x");
        assert_eq!(na.param("tag"), Some("9"));
        assert_eq!(na.param("lr"), Some(""));
        assert_eq!(na.param("maddr"), None);
        assert_eq!(NameAddr::read("<sip:bob@x>").param("tag"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for v in [
            "",
            "<",
            ">",
            "\"",
            "\"<",
            "<\"",
            "\\",
            "\"\\",
            "<sip:x",
            "\"a\" <",
            ";",
            ";=",
            "<>;",
            "é<ü>;ß=\"",
            "\"é\\é\"<sip:ü>",
        ] {
            let na = NameAddr::read(v);
            let _ = na.params().count();
            let _ = na.param("tag");
        }
    }
}
