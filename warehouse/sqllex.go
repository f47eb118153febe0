package warehouse

import "strings"

// sqlToken is one token of a ClickHouse statement, as far as the read-only
// check needs to know: words (keywords, identifiers, numbers), quoted
// identifiers, string literals and single punctuation characters.
// Whitespace and comments are not tokens.
type sqlToken struct {
	kind       tokKind
	text       string // the token's bytes in the statement (quotes included)
	start, end int    // byte offsets in the statement
}

type tokKind int

const (
	tokWord        tokKind = iota // [A-Za-z0-9_]+
	tokString                     // '...'
	tokQuotedIdent                // "..." or `...`
	tokPunct                      // one ASCII punctuation character
)

// sqlPunct are the punctuation characters the lexer passes through.
// Anything else outside literals and comments is refused, so text the
// lexer does not understand never reaches ClickHouse.
const sqlPunct = "()[]{},.;:+-*/%<>=!|?@^&~"

// lexSQL splits sql into tokens. It follows ClickHouse's lexer where the
// two engines agree and takes the stricter reading where they do not:
//
//   - '...' strings and "..."/`...` identifiers end at an unescaped quote;
//     a backslash escapes the next byte and a doubled quote is one quote
//     (both engines);
//   - -- starts a comment to the end of the line (both);
//   - # starts a comment to the end of the line: chDB 26 reads "# " and
//     "#!" so and refuses other '#', 18.16 refuses every '#', so treating
//     it as a comment hides only text ClickHouse ignores or refuses;
//   - /* ... */ is a block comment; a "/*" inside one is refused, because
//     chDB 26 nests block comments and 18.16 does not;
//   - '$' is refused: chDB 26 reads $$...$$ and $tag$...$tag$ as strings,
//     18.16 refuses them;
//   - NUL is refused anywhere (chDB reads the statement as a C string),
//     and non-ASCII bytes and other characters outside literals and
//     comments are refused.
//
// An unterminated string, identifier or comment is refused.
func lexSQL(sql string) ([]sqlToken, error) {
	refuse := func(off int, reason string) ([]sqlToken, error) {
		return nil, &ReadOnlyError{Reason: reason, Offset: off}
	}
	if i := strings.IndexByte(sql, 0); i >= 0 {
		return refuse(i, "a NUL byte")
	}
	var toks []sqlToken
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-', c == '#':
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(sql)
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return refuse(i, "an unterminated block comment")
			}
			body := sql[i+2 : i+2+end]
			if j := strings.Index(body, "/*"); j >= 0 {
				return refuse(i+2+j, "a block comment inside a block comment")
			}
			i += 2 + end + 2
		case c == '\'' || c == '"' || c == '`':
			end, ok := quotedEnd(sql, i)
			if !ok {
				if c == '\'' {
					return refuse(i, "an unterminated string literal")
				}
				return refuse(i, "an unterminated quoted identifier")
			}
			kind := tokQuotedIdent
			if c == '\'' {
				kind = tokString
			}
			toks = append(toks, sqlToken{kind: kind, text: sql[i:end], start: i, end: end})
			i = end
		case isWordByte(c):
			j := i + 1
			for j < len(sql) && isWordByte(sql[j]) {
				j++
			}
			toks = append(toks, sqlToken{kind: tokWord, text: sql[i:j], start: i, end: j})
			i = j
		case c == '$':
			return refuse(i, "'$' (heredoc strings are not supported)")
		case c < 0x80 && strings.IndexByte(sqlPunct, c) >= 0:
			toks = append(toks, sqlToken{kind: tokPunct, text: sql[i : i+1], start: i, end: i + 1})
			i++
		case c >= 0x80:
			return refuse(i, "a non-ASCII character outside a string literal or quoted identifier")
		default:
			return refuse(i, "the character "+quoteByte(c))
		}
	}
	return toks, nil
}

// quotedEnd returns the offset just past the literal that starts with the
// quote at sql[start], and false if it is not terminated.
func quotedEnd(sql string, start int) (int, bool) {
	q := sql[start]
	for i := start + 1; i < len(sql); i++ {
		switch sql[i] {
		case '\\':
			i++ // the escaped byte; past the end means unterminated
		case q:
			if i+1 < len(sql) && sql[i+1] == q {
				i++
				continue
			}
			return i + 1, true
		}
	}
	return 0, false
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func quoteByte(c byte) string {
	const hex = "0123456789abcdef"
	if c >= 0x20 && c < 0x7f {
		return "'" + string(c) + "'"
	}
	return "0x" + string(hex[c>>4]) + string(hex[c&0xf])
}
