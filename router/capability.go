package router

import "github.com/loopgate/loopgate/event"

// bodyKind is the body encoding a capability's endpoint takes, as in
// go-livepeer's gateway.
type bodyKind int

const (
	bodyJSON bodyKind = iota
	bodyMultipart
)

// unitRule says how a capability's billable units are counted.
type unitRule int

const (
	unitsRequestedPixels unitRule = iota // height × width × num_images_per_prompt from the body
	unitsImagePixels                     // decoded input image height × width (× num_images_per_prompt for image-to-image)
	unitsVideoPixels                     // height × width × frames
	unitsAudioMillis                     // milliseconds of input audio
	unitsMaxTokens                       // max_tokens
	unitsCharacters                      // characters (runes) of the text field
)

// capSpec is the fixed description of one capability.
type capSpec struct {
	name  string
	body  bodyKind
	units unitRule
	// imagesField: the request's num_images_per_prompt multiplies the units.
	imagesField bool
	// required body fields; a request without one is answered 400.
	required []string
	// modelFields are read in order; the first non-empty one names the model.
	modelFields []string
}

// capSpecs returns the capability table. It is a function, not a package
// variable, so nothing at package level can be mutated.
func capSpecs() []capSpec {
	model := []string{"model_id"}
	return []capSpec{
		{name: event.CapTextToImage, body: bodyJSON, units: unitsRequestedPixels, imagesField: true, required: []string{"prompt"}, modelFields: model},
		{name: event.CapImageToImage, body: bodyMultipart, units: unitsImagePixels, imagesField: true, required: []string{"prompt", "image"}, modelFields: model},
		{name: event.CapImageToVideo, body: bodyMultipart, units: unitsVideoPixels, required: []string{"image"}, modelFields: model},
		{name: event.CapUpscale, body: bodyMultipart, units: unitsImagePixels, required: []string{"prompt", "image"}, modelFields: model},
		{name: event.CapAudioToText, body: bodyMultipart, units: unitsAudioMillis, required: []string{"audio"}, modelFields: model},
		{name: event.CapSegmentAnything2, body: bodyMultipart, units: unitsImagePixels, required: []string{"image"}, modelFields: model},
		{name: event.CapImageToText, body: bodyMultipart, units: unitsImagePixels, required: []string{"image"}, modelFields: model},
		// go-livepeer's /llm body is OpenAI-shaped: the model is "model".
		{name: event.CapLLM, body: bodyJSON, units: unitsMaxTokens, required: []string{"messages"}, modelFields: []string{"model_id", "model"}},
		{name: event.CapTextToSpeech, body: bodyJSON, units: unitsCharacters, required: []string{"text"}, modelFields: model},
	}
}

// unitKind is the unit the capability is billed in (event.UnitKindOf).
func (c capSpec) unitKind() event.UnitKind {
	k, _ := event.UnitKindOf(c.name)
	return k
}

func capSpecByName(name string) (capSpec, bool) {
	for _, c := range capSpecs() {
		if c.name == name {
			return c, true
		}
	}
	return capSpec{}, false
}
