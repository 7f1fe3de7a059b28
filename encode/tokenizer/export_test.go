package tokenizer

// Helpers of the internal parity tests, for the external test package
// (roberta_parity_test.go, which imports encode/testmodel).

type (
	TestCase    = testCase
	Expectation = expectation
)

var (
	CompareAll         = compareAll
	ReadCases          = readJSONL[testCase]
	ReadExpectations   = readJSONL[expectation]
	ReadFile           = readFile
	ReferenceAvailable = referenceAvailable
	RunReference       = runReference
	SharedModelPath    = sharedModelPath
)
