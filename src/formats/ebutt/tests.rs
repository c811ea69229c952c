//! Unit tests of the EBU-TT Live parser: documents, namespaces, rows, limits and errors.

use super::*;
use crate::protocol::ErrorCode;

const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<tt:tt xmlns:tt="http://www.w3.org/ns/ttml" xmlns:ebuttp="urn:ebu:tt:parameters" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" ttp:timeBase="clock" ttp:clockMode="local" xml:lang="en" ebuttp:sequenceIdentifier="TestSequence1" ebuttp:sequenceNumber="7">"#;

fn doc(body: &str) -> String {
    format!("{HEAD}<tt:head/><tt:body dur=\"00:00:05\"><tt:div>{body}</tt:div></tt:body></tt:tt>")
}

fn rows(xml: &str) -> Vec<String> {
    parse(xml, 4000).expect("valid document").rows()
}

#[test]
fn reads_the_header_and_the_paragraphs() {
    let d = parse(
        &doc(r#"<tt:p xml:id="ID001">It only took me six days.</tt:p><tt:p xml:id="ID002">Then</tt:p>"#),
        4000,
    )
    .unwrap();
    assert_eq!(d.sequence_identifier, "TestSequence1");
    assert_eq!(d.sequence_number, 7);
    assert_eq!(
        d.paragraphs,
        vec![
            Paragraph {
                id: Some("ID001".into()),
                rows: vec!["It only took me six days.".into()]
            },
            Paragraph {
                id: Some("ID002".into()),
                rows: vec!["Then".into()]
            },
        ]
    );
}

#[test]
fn the_toolkit_sample_parses() {
    // As the EBU-TT Live toolkit writes it: the xml prefix declared, timing on the body.
    let xml = r#"<?xml version="1.0" ?>
<tt:tt ebuttp:sequenceIdentifier="TestSequence1" ebuttp:sequenceNumber="1" ttp:clockMode="local" ttp:timeBase="clock" xml:lang="en-GB" xmlns:ebuttm="urn:ebu:tt:metadata" xmlns:ebuttp="urn:ebu:tt:parameters" xmlns:tt="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter" xmlns:xml="http://www.w3.org/XML/1998/namespace">
  <tt:head>
<tt:metadata>
  <ebuttm:documentMetadata/>
</tt:metadata>
  </tt:head>
  <tt:body tt:begin="49403721ms" tt:dur="00:00:01">
<tt:div>
  <tt:p xml:id="ID001">It only took me six days.</tt:p>
</tt:div>
  </tt:body>
</tt:tt>
"#;
    let d = parse(xml, 4000).unwrap();
    assert_eq!(d.sequence_number, 1);
    assert_eq!(d.rows(), vec!["It only took me six days."]);
}

#[test]
fn spans_nest_whitespace_collapses_and_br_splits_rows() {
    let xml = doc(r#"<tt:p xml:id="sub1" region="bottom">
            <tt:span style="textWhite">A </tt:span>
            <tt:span style="textRed">red<tt:span> nested</tt:span></tt:span>
            <tt:span style="textWhite"> Word</tt:span>
            <tt:br/>
            <tt:span style="textWhite">in a   two row
                subtitle</tt:span>
        </tt:p>"#);
    assert_eq!(
        rows(&xml),
        vec!["A red nested Word", "in a two row subtitle"]
    );
    // Adjacent spans join without a space, as XML text does.
    assert_eq!(
        rows(&doc(
            "<tt:p>Hel<tt:span>lo</tt:span><tt:br/><tt:br/>  <tt:br/>you</tt:p>"
        )),
        vec!["Hello", "you"]
    );
}

#[test]
fn entities_character_references_and_cdata() {
    assert_eq!(
        rows(&doc(
            "<tt:p>Tom &amp; Jerry &lt;3 &quot;hi&quot; &apos;x&apos; &#169; &#x4F60;<![CDATA[ <b>&amp;</b>]]></tt:p>"
        )),
        vec!["Tom & Jerry <3 \"hi\" 'x' © 你 <b>&amp;</b>"]
    );
    let err = parse(&doc("<tt:p>&nbsp;</tt:p>"), 4000).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadXml, "{err}");
}

#[test]
fn chinese_and_arabic_text() {
    assert_eq!(
        rows(&doc("<tt:p>女士们，先生们，<tt:span>早上好。</tt:span></tt:p><tt:p>مرحبا بكم في المؤتمر</tt:p>")),
        vec!["女士们，先生们，早上好。", "مرحبا بكم في المؤتمر"]
    );
}

#[test]
fn namespaces_are_matched_by_uri_not_prefix() {
    // The default namespace and other prefixes work.
    let xml = r#"<tt xmlns="http://www.w3.org/ns/ttml" xmlns:p="urn:ebu:tt:parameters" p:sequenceIdentifier="s" p:sequenceNumber="3"><body><div><p>Default namespace</p></div></body></tt>"#;
    let d = parse(xml, 4000).unwrap();
    assert_eq!(
        (d.sequence_number, d.rows()),
        (3, vec!["Default namespace".to_string()])
    );
    // A tt: prefix bound to another namespace is not TTML.
    let xml = r#"<tt:tt xmlns:tt="urn:other" xmlns:ebuttp="urn:ebu:tt:parameters" ebuttp:sequenceIdentifier="s" ebuttp:sequenceNumber="1"/>"#;
    assert!(matches!(parse(xml, 4000), Err(DocError::NotTtml(_))));
    // A p of another namespace, and text outside p, are not caption text.
    let xml = doc(
        r#"<x:p xmlns:x="urn:x">hidden</x:p>stray<tt:p>shown<tt:metadata>meta</tt:metadata><x:b xmlns:x="urn:x">foreign</x:b></tt:p>"#,
    );
    assert_eq!(rows(&xml), vec!["shown"]);
    // Sequence attributes without the EBU-TT namespace do not count.
    let xml = r#"<tt:tt xmlns:tt="http://www.w3.org/ns/ttml" sequenceIdentifier="s" sequenceNumber="1"/>"#;
    assert_eq!(parse(xml, 4000), Err(DocError::MissingSequenceIdentifier));
}

#[test]
fn xml_space_preserve_keeps_spaces_and_breaks_rows_at_newlines() {
    let xml = doc("<tt:p xml:space=\"preserve\">two  spaces\nnext row</tt:p>");
    assert_eq!(rows(&xml), vec!["two  spaces", "next row"]);
}

#[test]
fn text_outside_body_is_ignored_and_an_empty_body_is_a_clear() {
    let xml =
        format!("{HEAD}<tt:head><tt:metadata>not shown</tt:metadata></tt:head><tt:body/></tt:tt>");
    assert_eq!(rows(&xml), Vec::<String>::new());
    let xml = format!("{HEAD}</tt:tt>");
    assert_eq!(rows(&xml), Vec::<String>::new());
    assert_eq!(
        rows(&doc("<tt:p xml:id=\"a\"/><tt:p>  </tt:p>")),
        Vec::<String>::new()
    );
}

#[test]
fn malformed_documents_are_refused_with_specific_errors() {
    let cases: Vec<(String, ErrorCode)> = vec![
        ("".into(), ErrorCode::BadXml),
        ("hello".into(), ErrorCode::BadXml),
        ("{\"type\":\"final\"}".into(), ErrorCode::BadXml),
        (doc("<tt:p>unclosed</tt:span></tt:p>"), ErrorCode::BadXml),
        (format!("{HEAD}<tt:body>"), ErrorCode::BadXml),
        (format!("{}<extra/>", doc("")), ErrorCode::BadXml),
        (doc("<u:p>undeclared</u:p>"), ErrorCode::BadXml),
        (
            format!(
                "<!DOCTYPE tt [<!ENTITY x \"boom\">]>{}",
                doc("<tt:p>&x;</tt:p>")
            ),
            ErrorCode::BadXml,
        ),
        (
            "<html><body><p>hi</p></body></html>".into(),
            ErrorCode::BadDocument,
        ),
    ];
    for (xml, code) in cases {
        let err = parse(&xml, 4000).expect_err(&xml);
        assert_eq!(err.code(), code, "{xml:?}: {err}");
        assert!(err.refusal().message.contains("nothing stored"));
    }
    let head = |attrs: &str| {
        format!(
            r#"<tt:tt xmlns:tt="http://www.w3.org/ns/ttml" xmlns:ebuttp="urn:ebu:tt:parameters" {attrs}/>"#
        )
    };
    assert_eq!(
        parse(&head(r#"ebuttp:sequenceIdentifier="s""#), 4000),
        Err(DocError::MissingSequenceNumber)
    );
    assert_eq!(
        parse(&head(r#"ebuttp:sequenceNumber="1""#), 4000),
        Err(DocError::MissingSequenceIdentifier)
    );
    assert_eq!(
        parse(
            &head(r#"ebuttp:sequenceIdentifier=" " ebuttp:sequenceNumber="1""#),
            4000
        ),
        Err(DocError::MissingSequenceIdentifier)
    );
    for bad in ["0", "-3", "x", "1.5", "", "99999999999999999999999"] {
        let xml = head(&format!(
            r#"ebuttp:sequenceIdentifier="s" ebuttp:sequenceNumber="{bad}""#
        ));
        assert!(
            matches!(parse(&xml, 4000), Err(DocError::BadSequenceNumber(_))),
            "{bad:?}"
        );
    }
    // A timestamp-like sequence number (as some producers send) is fine.
    let xml = head(r#"ebuttp:sequenceIdentifier=" s " ebuttp:sequenceNumber=" 1636064848635 ""#);
    let d = parse(&xml, 4000).unwrap();
    assert_eq!(
        (d.sequence_identifier.as_str(), d.sequence_number),
        ("s", 1636064848635)
    );
}

#[test]
fn oversize_text_and_too_many_rows_are_refused() {
    assert_eq!(rows(&doc("<tt:p>éééé</tt:p>")), vec!["éééé"]);
    assert_eq!(
        parse(&doc("<tt:p>éééé</tt:p>"), 3),
        Err(DocError::TextTooLong(3))
    );
    let many = "<tt:p>row</tt:p>".repeat(MAX_ROWS + 1);
    let err = parse(&doc(&many), 4000).unwrap_err();
    assert_eq!(
        (err.clone(), err.code()),
        (DocError::TooManyRows, ErrorCode::TextTooLong)
    );
}

#[test]
fn every_truncation_and_byte_flip_is_an_error_or_a_document_never_a_panic() {
    let xml = doc(
        "<tt:p xml:id=\"a\">Tom &amp; <tt:span>Jerry</tt:span><tt:br/>你好 &#x4F60;</tt:p>\
         <tt:p><![CDATA[x]]></tt:p>",
    );
    for (i, _) in xml.char_indices() {
        assert!(parse(&xml[..i], 4000).is_err(), "truncated at {i}");
    }
    let bytes = xml.as_bytes();
    for i in 0..bytes.len() {
        for b in [b'<', b'>', b'&', b'"', b'/', b':', b' ', b'x'] {
            let mut m = bytes.to_vec();
            m[i] = b;
            if let Ok(m) = std::str::from_utf8(&m) {
                let _ = parse(m, 4000);
            }
        }
    }
}
