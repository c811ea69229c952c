//! EBU-TT Live (EBU Tech 3370) documents: the TTML a live subtitle producer sends, one
//! complete document per WebSocket text message, each carrying what is on screen now.
//!
//! - [`parse`] reads one document with a namespace-aware XML parser: the root must be `tt` in
//!   the TTML namespace with `sequenceIdentifier` and `sequenceNumber` in the EBU-TT parameters
//!   namespace (elements and attributes are matched by namespace URI, never by prefix). The
//!   text is that of each `tt:p` of `tt:body`, in document order, `tt:span` text included, split
//!   into rows at each `tt:br`, with XML whitespace collapsed as TTML displays it.
//! - [`Screen`] turns the rows of successive documents of one sequence into caption lines: the
//!   last row is the line in progress, every row above it is complete (see its docs).
//!
//! A document is shown when it arrives; its timing ([`Timing`]: `begin`, `end`, `dur` of
//! `tt:body`) only tells when its content stops being shown. Styling and layout are ignored.
//! Pure functions, no I/O; the WebSocket session is `crate::session::ebutt`.

mod document;
mod screen;
mod timing;

pub use document::{DocError, Document, Paragraph, MAX_ROWS};
pub use screen::{Screen, Shown};
pub use timing::Timing;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

/// The TTML namespace of `tt:tt`, `tt:body`, `tt:p`, `tt:span`, `tt:br`.
pub const TTML_NS: &[u8] = b"http://www.w3.org/ns/ttml";
/// The EBU-TT parameters namespace of `ebuttp:sequenceIdentifier` and `ebuttp:sequenceNumber`.
pub const EBUTTP_NS: &[u8] = b"urn:ebu:tt:parameters";
/// The namespace of `xml:id` and `xml:space`.
const XML_NS: &[u8] = b"http://www.w3.org/XML/1998/namespace";

fn not_xml(e: impl std::fmt::Display) -> DocError {
    DocError::NotXml(e.to_string())
}

/// Whether a resolved name is in `ns`; an undeclared prefix is an error.
fn in_ns(r: &ResolveResult<'_>, ns: &[u8]) -> Result<bool, DocError> {
    match r {
        ResolveResult::Bound(Namespace(n)) => Ok(*n == ns),
        ResolveResult::Unbound => Ok(false),
        ResolveResult::Unknown(p) => Err(DocError::NotXml(format!(
            "undeclared namespace prefix {:?}",
            String::from_utf8_lossy(p)
        ))),
    }
}

/// What an open element means for the text inside it.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Inside `tt:body`.
    body: bool,
    /// Its text is caption text (a `tt:p` or a `tt:span` inside one).
    text: bool,
    /// This element is the `tt:p` being read.
    para: bool,
    /// `xml:space="preserve"` applies.
    preserve: bool,
}

/// Accumulates the rows of one `tt:p`.
#[derive(Debug, Default)]
struct Rows {
    rows: Vec<String>,
    row: String,
    /// Whitespace seen since the last character (collapsed to one space before the next).
    space: bool,
}

impl Rows {
    fn push_str(&mut self, text: &str, preserve: bool) {
        for c in text.chars() {
            self.push(c, preserve);
        }
    }

    fn push(&mut self, c: char, preserve: bool) {
        match c {
            '\n' if preserve => self.end_row(),
            ' ' | '\t' | '\r' | '\n' if !preserve => self.space = true,
            ' ' | '\t' | '\r' => self.row.push(' '),
            c => {
                if std::mem::take(&mut self.space) && !self.row.is_empty() {
                    self.row.push(' ');
                }
                self.row.push(c);
            }
        }
    }

    fn end_row(&mut self) {
        let row = std::mem::take(&mut self.row);
        self.space = false;
        let t = row.trim();
        if !t.is_empty() {
            self.rows.push(if t.len() == row.len() {
                row
            } else {
                t.to_string()
            });
        }
    }
}

/// The header attributes of the root element.
fn header(reader: &NsReader<&[u8]>, e: &BytesStart<'_>) -> Result<(String, u64), DocError> {
    let (mut ident, mut number) = (None, None);
    for a in e.attributes() {
        let a = a.map_err(not_xml)?;
        let (ns, local) = reader.resolver().resolve_attribute(a.key);
        if !in_ns(&ns, EBUTTP_NS)? {
            continue;
        }
        let value = || {
            a.normalized_value(XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .map_err(not_xml)
        };
        match local.as_ref() {
            b"sequenceIdentifier" => ident = Some(value()?),
            b"sequenceNumber" => number = Some(value()?),
            _ => {}
        }
    }
    let ident = ident
        .filter(|s| !s.trim().is_empty())
        .ok_or(DocError::MissingSequenceIdentifier)?;
    let raw = number.ok_or(DocError::MissingSequenceNumber)?;
    let digits = raw.trim();
    let digits = digits.strip_prefix('+').unwrap_or(digits);
    let n = digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse::<u64>().ok())
        .flatten()
        .filter(|&n| n > 0)
        .ok_or_else(|| DocError::BadSequenceNumber(raw.chars().take(40).collect()))?;
    Ok((ident.trim().to_string(), n))
}

/// The `xml:id` and `xml:space` of an element.
fn xml_attrs(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'_>,
) -> Result<(Option<String>, Option<bool>), DocError> {
    let (mut id, mut preserve) = (None, None);
    for a in e.attributes() {
        let a = a.map_err(not_xml)?;
        let (ns, local) = reader.resolver().resolve_attribute(a.key);
        if !in_ns(&ns, XML_NS)? {
            continue;
        }
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(not_xml)?;
        match local.as_ref() {
            b"id" => id = Some(v.into_owned()),
            b"space" => preserve = Some(v.trim() == "preserve"),
            _ => {}
        }
    }
    Ok((id, preserve))
}

/// Parses one EBU-TT Live document. Rows longer than `max_chars` characters, or more than
/// [`MAX_ROWS`] rows, refuse the whole document.
pub fn parse(xml: &str, max_chars: usize) -> Result<Document, DocError> {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Ctx> = Vec::new();
    let mut head: Option<(String, u64)> = None;
    let mut closed = false;
    let mut paragraphs = Vec::new();
    let mut para: Option<(Option<String>, Rows)> = None;
    let mut rows = 0usize;
    let mut timing = Timing::default();
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(not_xml)?;
        let tt = match &event {
            Event::Start(_) | Event::Empty(_) => in_ns(&ns, TTML_NS)?,
            _ => false,
        };
        drop(ns);
        let top = stack.last().copied();
        match event {
            Event::Start(e) | Event::Empty(e) if closed => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                return Err(DocError::NotXml(format!(
                    "element <{name}> after the root element"
                )));
            }
            Event::Start(ref e) | Event::Empty(ref e) if top.is_none() => {
                if !tt || e.local_name().as_ref() != b"tt" {
                    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    return Err(DocError::NotTtml(format!("<{name}>")));
                }
                head = Some(header(&reader, e)?);
                timing::read_attrs(&reader, e, &mut timing, true)?;
                let (_, preserve) = xml_attrs(&reader, e)?;
                if matches!(event, Event::Start(_)) {
                    stack.push(Ctx {
                        body: false,
                        text: false,
                        para: false,
                        preserve: preserve.unwrap_or(false),
                    });
                } else {
                    closed = true;
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let top = top.expect("root is open");
                let local = e.local_name();
                let (id, preserve) = xml_attrs(&reader, e)?;
                let preserve = preserve.unwrap_or(top.preserve);
                let mut ctx = Ctx {
                    body: top.body,
                    text: false,
                    para: false,
                    preserve,
                };
                match (tt, local.as_ref()) {
                    (true, b"body") => {
                        ctx.body = true;
                        timing::read_attrs(&reader, e, &mut timing, false)?;
                    }
                    (true, b"p") if top.body && para.is_none() => {
                        ctx.text = true;
                        ctx.para = true;
                        para = Some((id, Rows::default()));
                    }
                    (true, b"span") => ctx.text = top.text,
                    (true, b"br") if top.text => {
                        if let Some((_, r)) = para.as_mut() {
                            r.end_row();
                        }
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(ctx);
                } else if ctx.para {
                    // An empty <tt:p/> has no text.
                    para = None;
                }
            }
            Event::End(_) => {
                let ctx = stack.pop().ok_or_else(|| not_xml("unexpected end tag"))?;
                if ctx.para {
                    if let Some((id, mut r)) = para.take() {
                        r.end_row();
                        // Cheap byte bound first: a char is at least one byte.
                        if r.rows
                            .iter()
                            .any(|t| t.len() > max_chars && t.chars().count() > max_chars)
                        {
                            return Err(DocError::TextTooLong(max_chars));
                        }
                        rows += r.rows.len();
                        if rows > MAX_ROWS {
                            return Err(DocError::TooManyRows);
                        }
                        if !r.rows.is_empty() {
                            paragraphs.push(Paragraph { id, rows: r.rows });
                        }
                    }
                }
                if stack.is_empty() {
                    closed = true;
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content().map_err(not_xml)?;
                match top {
                    Some(ctx) if ctx.text => {
                        if let Some((_, r)) = para.as_mut() {
                            r.push_str(&text, ctx.preserve);
                        }
                    }
                    None if !text.trim().is_empty() => {
                        return Err(not_xml("text outside the root element"));
                    }
                    _ => {}
                }
            }
            Event::CData(t) => {
                let text = t.xml10_content().map_err(not_xml)?;
                match top {
                    Some(ctx) if ctx.text => {
                        if let Some((_, r)) = para.as_mut() {
                            r.push_str(&text, ctx.preserve);
                        }
                    }
                    None => return Err(not_xml("CDATA outside the root element")),
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(not_xml)?;
                let resolved = match r.resolve_char_ref().map_err(not_xml)? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| DocError::NotXml(format!("unknown entity &{name};")))?
                        .to_string(),
                };
                match top {
                    Some(ctx) if ctx.text => {
                        if let Some((_, r)) = para.as_mut() {
                            r.push_str(&resolved, ctx.preserve);
                        }
                    }
                    None => return Err(not_xml("a reference outside the root element")),
                    _ => {}
                }
            }
            Event::DocType(_) => {
                return Err(not_xml("a DOCTYPE is not allowed"));
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(not_xml(
            "the document ends before its root element is closed",
        ));
    }
    let (sequence_identifier, sequence_number) = head.ok_or_else(|| not_xml("no root element"))?;
    Ok(Document {
        sequence_identifier,
        sequence_number,
        paragraphs,
        timing,
    })
}

#[cfg(test)]
mod tests;
