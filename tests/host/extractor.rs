//! Token extraction from headers and query parameters, and stripping tokens from the path.

use jwt_authn_wasm::config::{HeaderLocation, TokenLocations};
use jwt_authn_wasm::request::{extract_tokens, path_without_param, TokenSource};
use jwt_authn_wasm::request::{
    parse_header_pairs, rewrite_in_one_call, rewritten_header_map, serialize_header_pairs,
    ONE_CALL_FROM_CHANGES,
};

fn headers(pairs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect()
}

fn raw_tokens(locations: &TokenLocations, h: &[(String, Vec<u8>)], path: &str) -> Vec<Vec<u8>> {
    extract_tokens(locations, h, path.as_bytes())
        .into_iter()
        .map(|t| t.raw.to_vec())
        .collect()
}

#[test]
fn default_locations_are_bearer_header_and_access_token_param() {
    let defaults = TokenLocations::jwt_authn_default();
    let h = headers(&[("authorization", b"Bearer abc.def.ghi")]);
    let found = extract_tokens(&defaults, h.as_slice(), b"/x");
    assert_eq!(found.len(), 1);
    assert_eq!(&*found[0].raw, b"abc.def.ghi");
    assert_eq!(found[0].source, TokenSource::Header("authorization".into()));
    let none: &[(String, Vec<u8>)] = &[];
    let found = extract_tokens(&defaults, none, b"/x?a=1&access_token=t%2Ek&b");
    assert_eq!(&*found[0].raw, b"t.k", "query values are percent-decoded");
    assert_eq!(found[0].source, TokenSource::Param("access_token".into()));
}

#[test]
fn bearer_scheme_matches_in_any_case_and_anywhere_in_the_value() {
    let defaults = TokenLocations::jwt_authn_default();
    for value in [
        "Bearer t",
        "bearer t",
        "BEARER t",
        "  Bearer   t  ",
        "Token Bearer t",
    ] {
        let h = headers(&[("Authorization", value.as_bytes())]);
        assert_eq!(
            raw_tokens(&defaults, &h, "/"),
            vec![b"t".to_vec()],
            "{value:?}"
        );
    }
    for value in ["Basic dXNlcg==", "Bearer", "Bearer   ", "t", ""] {
        let h = headers(&[("authorization", value.as_bytes())]);
        assert!(raw_tokens(&defaults, &h, "/").is_empty(), "{value:?}");
    }
}

#[test]
fn configured_prefix_is_case_sensitive_and_empty_prefix_takes_the_whole_value() {
    let locations = TokenLocations {
        headers: vec![
            HeaderLocation {
                name: "x-token".into(),
                value_prefix: "Token ".into(),
            },
            HeaderLocation {
                name: "x-raw".into(),
                value_prefix: String::new(),
            },
        ],
        params: vec![],
        cookies: vec![],
    };
    let h = headers(&[
        ("x-token", b"token a"),
        ("x-token", b"Token b"),
        ("x-raw", b" c "),
    ]);
    assert_eq!(
        raw_tokens(&locations, &h, "/"),
        vec![b"b".to_vec(), b"c".to_vec()]
    );
}

#[test]
fn every_copy_of_a_header_is_a_token_and_non_utf8_bytes_pass_through_untouched() {
    let defaults = TokenLocations::jwt_authn_default();
    let h = headers(&[
        ("authorization", b"Bearer one"),
        ("authorization", b"Bearer \xff\xfe"),
    ]);
    // Nothing JWT-like follows the prefix, so (as jwt_authn) the whole value is the token.
    assert_eq!(
        raw_tokens(&defaults, &h, "/"),
        vec![b"one".to_vec(), b"Bearer \xff\xfe".to_vec()]
    );
}

#[test]
fn after_the_prefix_characters_that_cannot_start_a_jwt_are_skipped_as_in_jwt_authn() {
    let locations = TokenLocations {
        headers: vec![
            HeaderLocation {
                name: "x-quoted".into(),
                value_prefix: "Token ".into(),
            },
            HeaderLocation {
                name: "x-eq".into(),
                value_prefix: "Bearer".into(),
            },
        ],
        params: vec![],
        cookies: vec![],
    };
    let h = headers(&[
        ("x-quoted", b"Token \"aa.bb.cc\""),
        ("x-eq", b"Bearer=aa.bb-_.cc, other"),
    ]);
    assert_eq!(
        raw_tokens(&locations, &h, "/"),
        vec![b"aa.bb.cc\"".to_vec(), b"aa.bb-_.cc, other".to_vec()],
        "what follows the token stays part of it, as in jwt_authn 1.40"
    );
}

#[test]
fn param_removal_keeps_other_parameters_in_order() {
    assert_eq!(
        path_without_param(b"/a?access_token=x", "access_token"),
        b"/a"
    );
    assert_eq!(
        path_without_param(b"/a?x=1&access_token=t&y=2", "access_token"),
        b"/a?x=1&y=2"
    );
    assert_eq!(
        path_without_param(b"/a?access_token=1&access_token=2&z", "access_token"),
        b"/a?z"
    );
    assert_eq!(
        path_without_param(b"/a?access_tokens=1", "access_token"),
        b"/a?access_tokens=1"
    );
    assert_eq!(path_without_param(b"/a", "access_token"), b"/a");
}

#[test]
fn cookies_are_parsed_as_envoy_does() {
    let locations = TokenLocations {
        headers: vec![],
        params: vec![],
        cookies: vec!["session".into(), "quoted".into(), "absent".into()],
    };
    let h = headers(&[
        ("cookie", b"a=1; session=tok.en.one;x=2"),
        ("cookie", b"session=second; quoted=\"q.u.o\""),
    ]);
    let found: Vec<(Vec<u8>, TokenSource)> = extract_tokens(&locations, h.as_slice(), b"/")
        .into_iter()
        .map(|t| (t.raw.to_vec(), t.source))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                b"tok.en.one".to_vec(),
                TokenSource::Cookie("session".into())
            ),
            (b"q.u.o".to_vec(), TokenSource::Cookie("quoted".into())),
        ],
        "first occurrence wins, one pair of quotes is removed, absent cookies give nothing"
    );
}

/// The host's map format: count, (name length, value length) per pair, then each name and value with a
/// trailing NUL.
#[test]
fn a_host_header_map_is_read_in_place_and_a_short_one_is_refused() {
    let headers: [(&[u8], &[u8]); 4] = [
        (b":path", b"/api?x=1"),
        (b"authorization", b"Bearer a.b.c"),
        (b"x-empty", b""),
        (b"x-bytes", b"\xff\x00\xfe"),
    ];
    let map = serialize_header_pairs(&headers);
    assert_eq!(parse_header_pairs(&map).unwrap().to_vec(), headers.to_vec());
    assert!(parse_header_pairs(&serialize_header_pairs(&[]))
        .unwrap()
        .is_empty());
    // Every truncation of the map announces more than it holds. (The last byte is the final NUL, which
    // the reader does not need.)
    for len in 0..map.len() - 1 {
        assert_eq!(
            parse_header_pairs(&map[..len]),
            None,
            "truncated to {len} bytes"
        );
    }
    // A count that its sizes cannot back, and sizes that overflow.
    let mut lying = map.clone();
    lying[0] = 200;
    assert_eq!(parse_header_pairs(&lying), None);
    let mut huge = map.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(parse_header_pairs(&huge), None);
    assert_eq!(parse_header_pairs(&u32::MAX.to_le_bytes()), None);
}

#[test]
fn a_header_map_is_written_in_the_proxy_wasm_layout() {
    let pairs: [(&[u8], &[u8]); 2] = [(b"a", b"bc"), (b":path", b"")];
    let mut expected = vec![2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0];
    expected.extend_from_slice(b"a\0bc\0:path\0\0");
    assert_eq!(serialize_header_pairs(&pairs), expected);
}

#[test]
fn a_rewritten_header_map_is_what_the_changes_one_by_one_would_leave() {
    let request: [(&[u8], &[u8]); 6] = [
        (b":path", b"/api?access_token=t&y=1"),
        (b":method", b"GET"),
        (b"authorization", b"Bearer t"),
        (b"x-sub", b"forged"),
        (b"accept", b"*/*"),
        (b"X-Sub", b"forged too"),
    ];
    let remove = ["authorization".to_string(), "x-sub".to_string()];
    let add = [
        ("x-sub".to_string(), "alice".to_string()),
        ("x-sub".to_string(), "bob".to_string()),
        (
            "x-iss".to_string(),
            "https://issuer.example.com".to_string(),
        ),
    ];
    let map = rewritten_header_map(&request, &remove, &add, Some(b"/api?y=1"));
    let expected: Vec<(&[u8], &[u8])> = vec![
        (b":path", b"/api?y=1"),
        (b":method", b"GET"),
        (b"accept", b"*/*"),
        (b"x-sub", b"alice"),
        (b"x-sub", b"bob"),
        (b"x-iss", b"https://issuer.example.com"),
    ];
    assert_eq!(parse_header_pairs(&map).unwrap().to_vec(), expected);
    // Without a new path, :path stays as it was.
    let (no_removals, no_additions): ([&str; 0], [(&str, &str); 0]) = ([], []);
    let map = rewritten_header_map(&request, &no_removals, &no_additions, None);
    assert_eq!(parse_header_pairs(&map).unwrap().to_vec(), request.to_vec());
}

#[test]
fn header_changes_go_in_one_call_only_from_a_few_on() {
    assert!(!rewrite_in_one_call(0));
    assert!(!rewrite_in_one_call(ONE_CALL_FROM_CHANGES - 1));
    assert!(rewrite_in_one_call(ONE_CALL_FROM_CHANGES));
    assert!(rewrite_in_one_call(21));
}
