package testmodel

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The synthetic tokenizer and corpus let a model be generated and exercised
// with no data file at all (splash selftest, containers, installs without a
// checkout's testdata/).
//
// SyntheticTokenizerJSON is a tokenizer.json of the bert-base-uncased shape
// (BertNormalizer lowercasing and stripping accents, BertPreTokenizer,
// WordPiece with "[UNK]" and "##", TemplateProcessing "[CLS] $A [SEP]") with a
// vocabulary of SyntheticVocabSize entries, in id order:
//
//   - 0..4: [PAD], [UNK], [CLS], [SEP], [MASK] (also the added tokens);
//   - every printable ASCII character (! to ~), then each with "##";
//   - 24 common CJK ideographs;
//   - 3000 whole words and 783 "##" continuation pieces: the most frequent
//     alphabetic entries of bert-base-uncased's vocabulary, in its order.
//
// Common words are therefore single tokens, inflected or invented words split
// into pieces ("governments": "government" "##s"; "kalorin": "k" "##al"
// "##ori" "##n"), and words with a character outside the vocabulary (ß, ø,
// Greek, kana, emoji) become [UNK].
//
// SyntheticCorpus writes English-like documents over that vocabulary.

// SyntheticVocabSize is the vocabulary size of SyntheticTokenizerJSON.
const SyntheticVocabSize = 4000

// Special token ids of the synthetic tokenizer.
const (
	synthPadID  = 0
	synthUnkID  = 1
	synthCLSID  = 2
	synthSEPID  = 3
	synthMaskID = 4
)

// synthSpecials are the special tokens, at ids 0..4.
var synthSpecials = [...]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}

// synthCJK are the ideographs of the vocabulary; synthCJKExtra are used in
// the corpus but are not in the vocabulary (each gives [UNK]).
const (
	synthCJK      = "的一是不了人我在有他这中大来上国个到说们为子和你"
	synthCJKExtra = "龍鳳燕鶴雲霧晴桜"
)

// syntheticVocab returns the vocabulary, indexed by id.
func syntheticVocab() []string {
	v := make([]string, 0, SyntheticVocabSize)
	v = append(v, synthSpecials[:]...)
	for c := '!'; c <= '~'; c++ {
		v = append(v, string(c))
	}
	for c := '!'; c <= '~'; c++ {
		v = append(v, "##"+string(c))
	}
	for _, c := range synthCJK {
		v = append(v, string(c))
	}
	v = append(v, strings.Fields(synthWords)...)
	for _, p := range strings.Fields(synthPieces) {
		v = append(v, "##"+p)
	}
	return v
}

// SyntheticTokenizerJSON returns the synthetic tokenizer.json described
// above. The bytes are the same in every call. To generate a model from it,
// write it to a file and pass that path to Generate (the file may be
// DIR/tokenizer.json of the model directory itself: Generate reads it before
// it replaces it with the same bytes).
func SyntheticTokenizerJSON() []byte {
	var b []byte
	b = append(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": ["...)
	for id, tok := range synthSpecials {
		if id > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "\n    {\"id\": %d, \"content\": ", id)
		b = appendJSONString(b, tok)
		b = append(b, `, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}`...)
	}
	b = append(b, "\n  ],\n"...)
	b = fmt.Appendf(b, synthComponents, synthCLSID, synthSEPID)
	b = append(b, "  \"model\": {\n    \"type\": \"WordPiece\",\n    \"unk_token\": \"[UNK]\",\n"+
		"    \"continuing_subword_prefix\": \"##\",\n    \"max_input_chars_per_word\": 100,\n    \"vocab\": {"...)
	for id, tok := range syntheticVocab() {
		if id > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n      "...)
		b = appendJSONString(b, tok)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, int64(id), 10)
	}
	b = append(b, "\n    }\n  }\n}\n"...)
	return b
}

// synthComponents is the normalizer, pre-tokenizer, post-processor and
// decoder of bert-base-uncased (%d: the [CLS] and [SEP] ids).
const synthComponents = `  "normalizer": {
    "type": "BertNormalizer",
    "clean_text": true,
    "handle_chinese_chars": true,
    "strip_accents": null,
    "lowercase": true
  },
  "pre_tokenizer": {
    "type": "BertPreTokenizer"
  },
  "post_processor": {
    "type": "TemplateProcessing",
    "single": [
      {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
      {"Sequence": {"id": "A", "type_id": 0}},
      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}
    ],
    "pair": [
      {"SpecialToken": {"id": "[CLS]", "type_id": 0}},
      {"Sequence": {"id": "A", "type_id": 0}},
      {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
      {"Sequence": {"id": "B", "type_id": 1}},
      {"SpecialToken": {"id": "[SEP]", "type_id": 1}}
    ],
    "special_tokens": {
      "[CLS]": {"id": "[CLS]", "ids": [%[1]d], "tokens": ["[CLS]"]},
      "[SEP]": {"id": "[SEP]", "ids": [%[2]d], "tokens": ["[SEP]"]}
    }
  },
  "decoder": {
    "type": "WordPiece",
    "prefix": "##",
    "cleanup": true
  },
`

// appendJSONString appends s (valid UTF-8) as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// Corpus layout: in every block of synthBlock documents (by index), one is
// empty or whitespace only and one has 550..700 words; the others have 1..20
// words (5%), 50..300 (80%), 300..450 (10%) or 450..700 (5%).
const synthBlock = 50

// synthBlank are the texts of the empty documents, one per block in turn.
var synthBlank = [...]string{"", " ", "\n", "\t \r\n  ", "\u00a0\u3000 "}

// SyntheticCorpus returns n English-like documents, the same for the same
// seed on every architecture (no rounded arithmetic): document i depends
// only on seed and i, so a shorter corpus is a prefix of a longer one. Most documents have 50 to 300 words; some are a few
// words long, and some have up to 700 words, more than 512 tokens of the
// synthetic tokenizer. One document in 50 is empty or whitespace only.
//
// Words are mostly frequent words of the synthetic vocabulary (Zipf-like), mixed
// with inflected and invented words that split into pieces, numbers,
// punctuation, hyphens and apostrophes, capitalised and upper-case words,
// accented words (café, über, señor: lowercased and stripped by the
// normalizer), CJK ideographs, a few words that become [UNK] (straße, emoji,
// Greek, kana, words over 100 characters) and the odd soft hyphen, which
// the normalizer removes. Sentences end in . ? ! or ..., paragraphs are
// separated by blank lines.
func SyntheticCorpus(n int, seed uint64) []string {
	if n <= 0 {
		return nil
	}
	words := strings.Fields(synthWords)
	docSeed := tensorSeed(seed, "synthetic-corpus/document")
	blockSeed := tensorSeed(seed, "synthetic-corpus/block")
	docs := make([]string, n)
	for i := range docs {
		block := i / synthBlock
		br := rowRNG(blockSeed, block)
		blank := synthIntn(br, synthBlock)
		long := (blank + 1 + synthIntn(br, synthBlock-1)) % synthBlock
		g := synthWriter{r: rowRNG(docSeed, i), words: words}
		switch i % synthBlock {
		case blank:
			docs[i] = synthBlank[block%len(synthBlank)]
		case long:
			docs[i] = g.document(550 + synthIntn(g.r, 151))
		default:
			docs[i] = g.document(g.length())
		}
	}
	return docs
}

// synthIntn returns a number in [0, n), n > 0.
func synthIntn(r *rng, n int) int {
	return int(r.next() % uint64(n))
}

// synthPick returns one element of list.
func synthPick(r *rng, list []string) string {
	return list[synthIntn(r, len(list))]
}

// synthWriter writes one document.
type synthWriter struct {
	r     *rng
	words []string
	b     strings.Builder
}

// length draws the number of words of an ordinary document.
func (g *synthWriter) length() int {
	switch u := g.r.uniform(); {
	case u < 0.05:
		return 1 + synthIntn(g.r, 20)
	case u < 0.85:
		return 50 + synthIntn(g.r, 251)
	case u < 0.95:
		return 300 + synthIntn(g.r, 151)
	default:
		return 450 + synthIntn(g.r, 251)
	}
}

// document writes sentences of 4..24 words in paragraphs of 2..7 sentences
// until it has n words.
func (g *synthWriter) document(n int) string {
	inPara, paraLen := 0, 2+synthIntn(g.r, 6)
	for written := 0; written < n; {
		k := min(4+synthIntn(g.r, 21), n-written)
		if written > 0 {
			inPara++
			switch u := g.r.uniform(); {
			case inPara >= paraLen:
				g.b.WriteString("\n\n")
				inPara, paraLen = 0, 2+synthIntn(g.r, 6)
			case u < 0.05:
				g.b.WriteString("  ")
			case u < 0.08:
				g.b.WriteString("\n")
			case u < 0.09:
				g.b.WriteString("\r\n")
			case u < 0.10:
				g.b.WriteString(" \t")
			default:
				g.b.WriteByte(' ')
			}
		}
		g.sentence(k)
		written += k
	}
	return g.b.String()
}

// sentence writes k words, the first capitalised, and the final punctuation.
func (g *synthWriter) sentence(k int) {
	for j := 0; j < k; j++ {
		w := g.word()
		if j == 0 {
			w = synthCapitalize(w)
		}
		if j > 0 {
			switch u := g.r.uniform(); {
			case u < 0.08:
				g.b.WriteString(", ")
			case u < 0.09:
				g.b.WriteString("; ")
			case u < 0.10:
				g.b.WriteString(" - ")
			case u < 0.105:
				g.b.WriteString(": ")
			default:
				g.b.WriteByte(' ')
			}
		}
		switch u := g.r.uniform(); {
		case u < 0.008:
			w = "(" + w + ")"
		case u < 0.014:
			w = `"` + w + `"`
		case u < 0.016:
			w = "'" + w + "'"
		}
		g.b.WriteString(w)
	}
	switch u := g.r.uniform(); {
	case u < 0.85:
		g.b.WriteByte('.')
	case u < 0.93:
		g.b.WriteByte('?')
	case u < 0.97:
		g.b.WriteByte('!')
	default:
		g.b.WriteString("...")
	}
}

// common draws a vocabulary word, its index about log-uniform (Zipf's law):
// an octave [2^k-1, 2^(k+1)-1) uniformly, then an index in it. Integers only,
// so the corpus is the same on every architecture.
func (g *synthWriter) common() string {
	octaves := bits.Len(uint(len(g.words)))
	k := synthIntn(g.r, octaves)
	lo, hi := 1<<k-1, min(1<<(k+1)-1, len(g.words))
	return g.words[lo+synthIntn(g.r, hi-lo)]
}

// word draws one word.
func (g *synthWriter) word() string {
	r := g.r
	var w string
	switch u := r.uniform(); {
	case u < 0.06:
		w = g.inflected()
	case u < 0.08:
		w = g.invented(2 + synthIntn(r, 2))
	case u < 0.105:
		w = g.number()
	case u < 0.125:
		w = g.joined()
	case u < 0.14:
		w = synthPick(r, synthAccented)
	case u < 0.15:
		w = g.cjk()
	case u < 0.155:
		w = synthPick(r, synthUnknown)
	case u < 0.156:
		w = g.invented(40 + synthIntn(r, 20)) // over 100 characters: [UNK]
	case u < 0.161:
		w = g.technical()
	default:
		w = g.common()
	}
	switch u := r.uniform(); {
	case u < 0.03:
		w = synthCapitalize(w)
	case u < 0.04:
		w = strings.ToUpper(w)
	case u < 0.042 && len(w) >= 4 && w[0] < utf8.RuneSelf && w[1] < utf8.RuneSelf:
		w = w[:2] + "\u00ad" + w[2:] // soft hyphen, removed by clean_text
	}
	return w
}

// synthSuffixes are appended to words to make inflected or derived forms.
var synthSuffixes = []string{"s", "es", "ed", "ing", "er", "ers", "est", "ly", "ness", "ation",
	"ment", "ments", "ful", "less", "ism", "ist", "ize", "ized", "able", "ity", "ic", "al"}

// inflected is a common word of 3 letters or more with a suffix: often a
// vocabulary word plus a ## piece, sometimes a word of its own.
func (g *synthWriter) inflected() string {
	w := g.common()
	for len(w) < 3 {
		w = g.common()
	}
	return w + synthPick(g.r, synthSuffixes)
}

var (
	synthOnsets = []string{"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t",
		"v", "w", "z", "br", "ch", "cl", "dr", "gr", "pl", "qu", "sh", "st", "th", "tr", "x"}
	synthVowels = []string{"a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ou", "y", "io"}
	synthCodas  = []string{"", "", "", "", "n", "r", "s", "l", "t", "m", "nd", "st", "x", "ck"}
)

// invented is a made-up word of k syllables.
func (g *synthWriter) invented(k int) string {
	var b strings.Builder
	for range k {
		b.WriteString(synthPick(g.r, synthOnsets))
		b.WriteString(synthPick(g.r, synthVowels))
		b.WriteString(synthPick(g.r, synthCodas))
	}
	return b.String()
}

// number is an integer, year, decimal, percentage, amount, time or ordinal.
func (g *synthWriter) number() string {
	r := g.r
	switch synthIntn(r, 9) {
	case 0, 1:
		return strconv.Itoa(synthIntn(r, 100))
	case 2:
		return strconv.Itoa(1800 + synthIntn(r, 226))
	case 3:
		return fmt.Sprintf("%d.%d", synthIntn(r, 100), synthIntn(r, 100))
	case 4:
		return fmt.Sprintf("%d%%", synthIntn(r, 101))
	case 5:
		return fmt.Sprintf("$%d", 1+synthIntn(r, 5000))
	case 6:
		return fmt.Sprintf("%d,%03d", 1+synthIntn(r, 99), synthIntn(r, 1000))
	case 7:
		return fmt.Sprintf("%d:%02d", synthIntn(r, 24), synthIntn(r, 60))
	default:
		n := 1 + synthIntn(r, 40)
		suffix := "th"
		if n%100 < 11 || n%100 > 13 {
			switch n % 10 {
			case 1:
				suffix = "st"
			case 2:
				suffix = "nd"
			case 3:
				suffix = "rd"
			}
		}
		return strconv.Itoa(n) + suffix
	}
}

// joined is a hyphenated compound or a contraction.
func (g *synthWriter) joined() string {
	switch synthIntn(g.r, 4) {
	case 0:
		return g.common() + "'s"
	case 1:
		return synthPick(g.r, []string{"don't", "can't", "isn't", "won't", "it's", "we're", "they've", "i'd"})
	default:
		return g.common() + "-" + g.common()
	}
}

// cjk is a run of 1..4 ideographs, one in four outside the vocabulary.
func (g *synthWriter) cjk() string {
	in, out := []rune(synthCJK), []rune(synthCJKExtra)
	var b strings.Builder
	for range 1 + synthIntn(g.r, 4) {
		if synthIntn(g.r, 4) == 0 {
			b.WriteRune(out[synthIntn(g.r, len(out))])
		} else {
			b.WriteRune(in[synthIntn(g.r, len(in))])
		}
	}
	return b.String()
}

// technical is a web address, an e-mail address, an identifier or a hashtag.
func (g *synthWriter) technical() string {
	switch synthIntn(g.r, 5) {
	case 0:
		return "www." + g.common() + ".com"
	case 1:
		return g.common() + "@" + g.common() + ".org"
	case 2:
		return g.common() + "_" + strconv.Itoa(synthIntn(g.r, 10))
	case 3:
		return "#" + g.common()
	default:
		return "e.g."
	}
}

// synthAccented are words whose accents the normalizer strips.
var synthAccented = []string{"café", "naïve", "résumé", "über", "señor", "jalapeño", "façade",
	"crème", "brûlée", "piñata", "zoë", "fiancée", "déjà", "mañana", "müller", "élan",
	"Ångström", "São", "Zürich", "Ñandú", "coöperate", "École"}

// synthUnknown are words with a character outside the vocabulary: each is
// one [UNK].
var synthUnknown = []string{"straße", "smørrebrød", "λόγος", "Ωmega", "🙂", "→", "½",
	"©2024", "ありがとう", "œuvre", "Łódź", "x²"}

// synthCapitalize upper-cases the first letter of w.
func synthCapitalize(w string) string {
	r, n := utf8.DecodeRuneInString(w)
	if r == utf8.RuneError || !unicode.IsLower(r) {
		return w
	}
	return string(unicode.ToUpper(r)) + w[n:]
}

// synthWords are the whole words of the vocabulary: the 3000 most frequent
// alphabetic words of bert-base-uncased, in its order (most frequent first).
const synthWords = `
the of and in to was he is as for on with that it his by at from her she you had an were but be
this are not my they one which or have him me first all also their has up who out been when
after there into new two its time would no what about said we over then other so more can if
like back them only some could where just during before do made school through than now years
most world may between down well three year while will later city under around did such being
used state people part know against your many second university both national these don known
off way until re how even get head didn team american because de born united film since still
long work south us became any high again day family see right man eyes house season war states
including took life north same each called name much place however go four group another found
won area here going away series left home music best make hand number company several never last
john very album take end good too following released game played little began district old want
those side held own early county ll league use west face think government march came small
general town june line based something september thought looked along international air july
club went january october our august april york few east show member college father public come
men five set station church next former november room party located december age got system let
love though every look song water century without body black night within great women single ve
building large population river named band white started once should service top built british
open death king moved local times children february book why door need president order final
road wasn although due major died village third knew asked turned st wanted say together
received main son served different behind himself felt members power football law voice play
near park history having saw mother army point front help english street art late hands games
award young put published country division across told often ever french london center six red
led days include light find tell among species really according central half form original gave
office making enough lost full opened must included live given german player run business woman
community cup might million land court development short round ii km seen class story always
become sure research almost director council la career things using island couldn car close
force better free support control field students education married nothing worked others record
big inside level anything continued give james military established non returned feel does title
written thing feet william far co association hard already championship human western department
hall role various production heart living fire version television royal produced working act
case society region present radio period looking least total keep england wife program per
brother mind special am works soon political george services taken created further able reached
david union joined upon done important social information either appeared position ground lead
rock dark election board france hair course arms site police girl instead real sound words
moment someone summer project announced san less wrote past followed blue founded al finally
india taking records america design considered northern god stop battle toward european outside
described track today playing language call heard professional low australia miles california
win yet green trying blood southern science maybe everything match square mouth video race
recorded leave above daughter points space museum change middle common move tv post lake seven
tried elected closed ten paul minister months start chief return canada person sea release
similar modern brought rest hit formed mr floor event doing thomas robert care killed training
star week needed turn finished railway rather news health sent example ran term michael coming
currently yes forces despite gold areas stage fact dead says popular originally germany probably
developed result pulled friend stood money running mi signed word songs child eventually met
tour average teams minutes festival current deep kind decided usually eastern seemed episode bed
added table indian private charles route available idea throughout centre addition appointed
style books eight construction press mean wall friends remained schools study institute oh
chinese sometimes events possible australian type brown forward talk process food debut seat
performance committee features character arts herself else lot strong russian range hours peter
arm morning dr sold quickly directed guitar china list performed media uk players smile myself
placed coach province towards wouldn leading whole boy official designed grand census europe
attack japanese henry cross getting alone action lower network wide washington japan hospital
believe changed sister hold gone sir hadn ship studies academy shot rights below base bad
involved kept largest bank future especially beginning mark movement section female magazine
plan professor lord longer sat walked hill actually civil energy model families size thus
aircraft completed includes data captain fight vocals featured richard bridge fourth officer
stone hear means medical groups management self lips competition entire lived technology leaving
federal tournament bit passed hot independent awards kingdom mary spent fine doesn reported jack
fall raised itself stay true studio sports replaced paris systems saint leader theatre whose
market capital parents spanish canadian earth cut degree writing bay christian awarded natural
higher bill coast provided previous senior ft valley organization stopped onto countries parts
conference queen security interest saying allowed master earlier phone matter smith winning try
happened moving campaign los breath nearly mid certain girls date italian african standing fell
artist shows deal mine industry everyone republic provide collection library student primary
owned older via heavy makes attention anyone africa stated length ended fingers command staff
skin foreign opening governor okay medal kill sun cover job introduced chest hell feeling
success meet reason standard meeting novel trade source buildings rose guy goal chapter native
husband previously unit limited entered weeks producer operations mountain takes covered forced
related roman complete successful key texas cold channel traditional films dance clear
approximately nine van prince question active tracks ireland regional silver author personal
sense operation economic holding twenty isbn additional speed hour edition regular historic
places whom shook movie secretary prior report chicago read foundation view engine scored units
ask airport property ready immediately lady month listed contract manager themselves lines navy
writer meant runs practice championships singer glass commission required forest starting
culture generally giving access attended test couple stand catholic martin caught executive eye
thinking chair quite shoulder hope decision plays defeated municipality whether structure
offered slowly pain ice direction paper mission mostly noted individual managed nature lives
plant helped except studied computer figure relationship issue significant loss die smiled gun
ago highest male bring goals mexico problem distance commercial completely location annual
famous drive neck surface caused italy understand greek highway wrong hotel comes appearance
joseph double issues musical companies castle income review assembly bass initially parliament
artists experience particular walk foot engineering talking window dropped miss baby boys break
stars edge remember policy carried train stadium bar sex angeles evidence becoming assistant
soviet upper step wing youth financial reach actor numerous nodded arrived minute believed sorry
complex beautiful victory associated temple chance perhaps metal bishop lee launched
particularly tree le retired subject prize contains yeah theory empire suddenly waiting trust
recording happy terms camp champion religious pass zealand names port ancient tom corner
represented watch legal anti justice cause watched brothers material changes simply response
louis fast answer historical stories straight create feature increased rate administration
virginia el activities cultural overall winner programs basketball legs guard beyond cast doctor
mm flight results remains cost effect winter larger islands problems chairman grew commander isn
pay failed selected hurt fort box regiment majority journal edward plans shown pretty irish
characters directly scene likely operated allow spring junior matches looks mike houses fellow
beach marriage rules oil florida expected nearby congress sam peace recent iii wait subsequently
cell variety serving agreed please poor joe pacific attempt wood democratic piece prime rural
mile touch appears township soldiers pennsylvania closer fighting claimed score jones physical
editor filled genus specific sitting super mom therefore supported status fear cases store
meaning wales minor spain tower focus vice frank follow parish separate golden horse fifth
remaining branch presented stared uses secret forms baseball exactly choice note discovered
travel composed truth russia ball color kiss dad wind continue ring referred numbers digital
greater metres slightly direct increase responsible crew rule trees troops broke goes
individuals hundred weight creek sleep memory defense provides ordered code value jewish windows
safe judge whatever corps realized growing pre cities alexander gaze lies spread scott letter
showed situation mayor transport watching workers extended expression normal chart multiple
border host daily mrs walls piano heat cannot earned products drama era authority seasons join
grade sign difficult machine territory mainly stations squadron stepped iron serve appear sky
speak broken charge knowledge kilometres removed ships article campus simple pushed britain
leaves recently cd soft boston latter easy acquired poland quality officers presence planned
nations mass broadcast jean share image influence wild offer emperor electric reading headed
ability promoted yellow ministry throat smaller politician latin spoke cars williams males lack
pop acting seeing consists estate pressure johnson newspaper jr chris olympics online conditions
beat elements walking vote needs carolina text featuring global block shirt levels francisco
purpose females et dutch duke ahead gas twice safety serious turning highly lieutenant firm
maria amount mixed daniel proposed perfect agreement affairs seconds contemporary paid prison
save kitchen label administrative intended constructed academic nice teacher races formerly
corporation ben nation issued shut drums housing victoria seems opera graduated function von
mentioned picked build recognized shortly protection picture notable exchange elections loved
percent racing fish elizabeth garden volume hockey beside settled competed replied drew actress
marine scotland steel glanced farm steve risk tonight positive magic singles effects gray screen
dog residents bus sides none secondary literature polish destroyed flying founder households lay
reserve usa gallery industrial younger approach appearances urban ones finish avenue powerful
fully growth page honor jersey projects advanced revealed basic infantry pair equipment visit
evening search grant effort solo treatment buried republican primarily bottom owner israel gives
jim dream bob remain spot notes produce champions contact ed soul accepted ways del losing split
price capacity basis trial questions guess officially memorial naval initial whispered median
engineer sydney columbia strength tears senate card asian agent software draw warm supposed com
pro transferred leaned candidate escape mountains asia potential activity entertainment seem
traffic jackson murder slow product orchestra haven agency bbc taught website comedy unable
storm planning albums rugby environment scientific grabbed protect boat typically damage
principal divided dedicated mount ohio pick fought driver empty shoulders sort thank berlin
prominent account freedom necessary efforts alex headquarters follows alongside des simon andrew
suggested operating learning steps sweet technical begin easily teeth speaking settlement scale
renamed ray max enemy semi joint compared scottish leadership analysis offers georgia pieces
captured animal deputy guest organized tony combined method challenge huge wants battalion sons
rise crime types facilities telling path platform sit tells assigned rich pull commonly alive
letters concept conducted wearing happen bought becomes holy gets ocean defeat languages
purchased coffee occurred titled declared applied sciences concert sounds jazz brain painting
fleet tax nick michigan count animals leaders episodes content birth clubs palace critical
refused fair leg laughed returning surrounding participated formation lifted pointed connected
rome medicine laid taylor santa powers adam tall shared focused knowing yards entrance falls
calling sources chosen beneath resources yard nominated silence zone defined gained thirty
bodies moon adopted christmas widely register apart iran premier serves du unknown parties
generation continues quick fields brigade quiet teaching clothes impact weapons partner flat
theater supreme relations plants suffered wilson kids begins seats armed internet models worth
laws communities classes background knows thanks quarter reaching humans carry killing format
kong hong setting architecture disease railroad inc possibly wish arthur thoughts harry doors
density crowd illinois stomach tone unique reports anyway liberal der vehicle thick dry drug
faced largely facility theme holds creation strange colonel revolution bell politics turns
silent rail relief independence combat shape write determined sales learned finger oxford
providing heritage fiction situated designated allowing distribution hosted sight interview
estimated reduced toronto footballer keeping guys damn claim motion sport sixth stayed en rear
receive handed twelve dress audience granted brazil spirit noticed etc olympic representative
eric tight trouble reviews drink vampire missing roles ranked newly household finals wave
critics phase massachusetts pilot unlike philadelphia bright guns crown organizations roof
respectively clearly tongue marked circle fox korea bronze brian expanded sexual supply yourself
inspired labour fc reference vision draft connection brand reasons classic driving trip jesus
cells entry neither trail claims atlantic orders labor nose afraid identified intelligence calls
cancer attacked passing stephen positions imperial grey jason sunday swedish avoid extra uncle
message covers allows surprise materials fame hunter citizens figures davis environmental
confirmed shit titles di performing difference acts attacks existing votes opportunity nor shop
entirely trains opposite pakistan develop resulted representatives actions reality pressed
barely wine conversation faculty northwest ends documentary nuclear stock grace sets eat
alternative bag resulting creating surprised cemetery drop finding sarah cricket streets
tradition ride exhibition target ear explained rain composer injury apartment municipal
educational occupied netherlands clean billion constitution learn maximum classical francis lose
opposition jose ontario bear core hills rolled ending drawn permanent fun lewis sites chamber
ryan scoring height lyrics staring officials snow oldest orange qualified interior apparently
succeeded thousand dinner lights existence fans heavily greatest conservative send bowl plus
enter catch economy duty speech authorities princess performances versions shall graduate
pictures effective remembered poetry desk crossed starring starts passenger sharp acres ass
weather falling rank fund supporting check adult publishing heads cm southeast lane application
bc les condition transfer prevent display ex regions earl federation cool relatively answered
besides obtained portion mix reaction liked dean express peak counter religion chain rare miller
convention aid lie vehicles mobile perform squad wonder lying crazy sword attempted centuries
weren philosophy category anna interested sweden wolf frequently abandoned kg literary alliance
task entitled threw promotion factory tiny soccer visited matt fm achieved defence internal
persian methods arrested otherwise cambridge programming villages elementary districts rooms
criminal conflict worry trained attempts waited signal bird truck subsequent programme ad
communist details faith sector patrick carrying laugh controlled korean showing origin fuel evil
brief identity darkness address pool missed publication web planet ian anne wings invited
briefly standards kissed ideas climate causing walter worse albert articles winners desire aged
northeast dangerous gate doubt wooden multi poet rising funding communications communication
violence copies prepared ford investigation skills pulling electronic containing ultimately
offices singing understanding restaurant tomorrow fashion christ ward da pope stands flow
studios aired commissioned contained exist fresh americans wrestling approved kid employed
respect suit angel asking increasing frame angry selling thin finds temperature statement ali
explain inhabitants towns extensive narrow jane flowers images promise somewhere object fly
closely bureau cape weekly presidential legislative launch founding artillery strike un
institutions roll writers landing chose kevin anymore pp attorney fit dan billboard receiving
agricultural breaking sought dave admitted lands mexican charlie specifically hole iv howard
credit moscow roads accident proved wear struck hey guards stuff slid expansion cat anthony
melbourne opposed sub southwest architect failure plane map camera tank listen regarding wet
introduction metropolitan link ep fighter inch grown gene anger fixed buy dvd khan domestic
worldwide chapel mill functions examples developing turkey hits pocket antonio papers grow
unless circuit concerned attached journalist selection journey converted provincial painted
hearing aren bands negative aside wondered knight lap survey ma noise billy shooting guide
bedroom priest resistance motor homes sounded giant scenes equal comic patients hidden solid
actual bringing afternoon touched funds wedding consisted marie canal sr kim treaty turkish
recognition residence cathedral broad knees incident shaped fired norwegian handle cheek contest
represent representing beauty birds advantage emergency wrapped drawing notice pink broadcasting
somehow bachelor seventh collected registered establishment alan assumed chemical personnel
roger retirement jeff portuguese wore tied device threat progress advance banks hired manchester
nfl teachers structures forever tennis helping saturday sale applications junction hip
incorporated neighborhood dressed ceremony influenced hers visual stairs decades inner kansas
hung hoped gain scheduled downtown engaged austria clock norway certainly pale protected victor
employees plate putting surrounded finishing blues tropical minnesota consider philippines
accept retrieved concern anderson properties institution gordon successfully vietnam backing
outstanding muslim crossing folk producing usual demand occurs observed lawyer educated kelly
string pleasure budget items quietly colorado philip typical derived survived asks mental jake
jews distinguished ltd sri extremely athletic loud thousands worried shadow transportation
horses weapon arena importance users tim objects contributed dragon douglas aware senator johnny
jordan sisters engines flag investment samuel shock capable clark row wheel refers session
familiar biggest wins hate maintained drove hamilton request expressed injured underground
churches walker wars tunnel passes stupid agriculture softly cabinet regarded joining indiana
push dates spend behavior woods protein gently chase morgan mention burning wake combination
occur mirror leads jimmy indeed impossible singapore paintings covering soldier locations
attendance sell historian wisconsin invasion argued painter diego changing egypt experienced
inches missouri vol grounds spoken switzerland reform rolling ha forget massive resigned burned
allen tennessee locked values improved wounded universe sick dating facing pack purchase user
moments merged anniversary coal brick understood causes dynasty queensland establish stores
crisis promote hoping views cards referee extension raise arizona improve colonial formal
charged palm lucky hide rescue faces feelings candidates juan goods courses weekend luke cash
fallen delivered affected installed carefully tries swiss hollywood costs lincoln responsibility
shore file proper normally maryland assistance jump constant offering friendly waters persons
realize contain trophy partnership factor musicians cry bound oregon indicated hero houston
medium consisting somewhat cycle beer moore frederick gotten eleven worst weak approached
arranged chin loan universal bond fifteen pattern disappeared translated lip arab capture
interests insurance shifted cave prix warning sections courts coat plot smell feed golf favorite
maintain knife vs voted degrees finance quebec opinion translation manner ruled operate
productions choose musician discovery confused tired separated
`

// synthPieces are the continuation pieces of the vocabulary, without "##":
// the 783 most frequent alphabetic pieces of bert-base-uncased of two letters
// or more, in its order.
const synthPieces = `
ing ed er ly es on us an en in man al ia is ra na ers le ic te ne ie ton ta th la ness ch um da
ry ma rs el re os ar ka ist ian or ism ling ity as ley ted ng ville able ri ies land ur ya ine
de ki ts ro less ey ion ha am ter ge ll se st ation nt son et ce to ting ble ke ni tion ham ive
do ca men ized ous va id co ck ns no ga li ment ba ner ko ate io wood led ty ve sa by ier ti
field ford ja ler ally ina ization ful go il at hi berg der sh rd lin lo ot za me ius line den
it wa ad ite que ard les ff tor age di ir mi est ria ze well ated ee ah ji ov pa ish ps tes lla
way house tic ger un ant burg ura town ding tte ping ize ay ging ol ss ent tt be ky ak ial han
per nd ls ai au ny ring ut bury kin ron head ow ium mer pe sen ong ised bo ds ists ries dy ana
worth ide ea ms nes don ku gan mo pur ul si rt ell om he ure ara che ney zed chi ik ker ski ini
ran tone ica jo ise ung ning red ux gh hip gs dale bi one ons ary ang ue cy ors ped ber and ore
ks im ded vi ino tz tan lan mann tus zi out ating gi gate sky water her nce bs ek tta back more
ged tive izing ola yn res idae cing ens ii des cs shi sis work ft nia van lle ster board up zer
gy ver ac ious bly ied su vin bridge ld port ram ities ving je logy sm tra so sy ora ten istic
ics ok ming ett ily ita tors ct ice lia em isation ance rin ye kar ened ae ua sk ano vo zing ach
ev ology ud ata ick ho ese ru rum rn king gar zo ered lis dae rian po lli ci era gen tti sed ris
ves ans uk oy hu fa ible ich yan tory ians ula ins ani sson lt hill ova ston ao light ou net llo
ved wick ned nan ane off dra ys ric time hn ery tis hl pers ros op side ties rie sha mm ball ren
lus cia ening ique ei shire ock ire gon wan cher ical let cha fer ken fish ction ika tar med
ette mus ites tin lu ix ward dar nts yo py ched bach down fully mic od kov ivity sing ters len
ified lon oon mes over dan mar ington ona ere cus ab lock ira hs vic ala tre ular ral rus ias
sey fe wn ess ew dor ering sley ig ability lar burn rk my nie ser heim ware ama ative pin hr all
ain ked feld ration ven our ments har ras ena ban pi mon ably bar nik low bed bus bert ress tha
ska ches point jan ella bin art ada ges ching ets ph ome sia lay ari ag ions yl ates las ida tu
ax non we ord bility use du bu maker ses view mate ec ill stein rat ings ides ene und og lands
book chen ologist con bel ack master nic iya din mp ert hon lie ify box eo ual san osa itz ator
hal fi das ulated oe uous ith nda nk ugh nis aki ath bird com ien hood bad war ification dia via
xi els zar mal ceae hed gue tal nell zy cker ju kan ovic wi sta tv lly stone ose urs cies del
rated iel zation tto tions tle cal bank dal ule oid works nation wing ap ws mas can sville ez
gle ising sco ado illa pp ncy ridge ray ale ile cc rio uri away ulation tie nna una dom oo ima
tein ces oma wall mont lyn ade ship yne kes shan orn gal sburg brook bling iro pm pan zu berry
horn als zhou cio une bc ids hus tel mie list phone ulate ography ole hall cho ree ensis inger
esh room ito iness logical car min kh bra ori long ois izes stic oc nne ological mia win nte
ence if iers yi cht woman val gne ui nus tine mel eau hen nen tas borough eon ode ory fl day bal
die lf fire lam born ees sar
`
