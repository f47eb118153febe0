package router

import "github.com/loopgate/loopgate/event"

// Capability names: the Livepeer AI gateway paths without the leading slash.
const (
	CapTextToImage      = "text-to-image"
	CapImageToImage     = "image-to-image"
	CapImageToVideo     = "image-to-video"
	CapUpscale          = "upscale"
	CapAudioToText      = "audio-to-text"
	CapSegmentAnything2 = "segment-anything-2"
	CapImageToText      = "image-to-text"
	CapLLM              = "llm"
	CapTextToSpeech     = "text-to-speech"
)

// Capabilities lists every capability the router serves, in route order.
func Capabilities() []string {
	return []string{
		CapTextToImage, CapImageToImage, CapImageToVideo, CapUpscale, CapAudioToText,
		CapSegmentAnything2, CapImageToText, CapLLM, CapTextToSpeech,
	}
}

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
	name     string
	body     bodyKind
	unitKind event.UnitKind
	units    unitRule
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
		{name: CapTextToImage, body: bodyJSON, unitKind: event.UnitPixels, units: unitsRequestedPixels, imagesField: true, required: []string{"prompt"}, modelFields: model},
		{name: CapImageToImage, body: bodyMultipart, unitKind: event.UnitPixels, units: unitsImagePixels, imagesField: true, required: []string{"prompt", "image"}, modelFields: model},
		{name: CapImageToVideo, body: bodyMultipart, unitKind: event.UnitPixels, units: unitsVideoPixels, required: []string{"image"}, modelFields: model},
		{name: CapUpscale, body: bodyMultipart, unitKind: event.UnitPixels, units: unitsImagePixels, required: []string{"prompt", "image"}, modelFields: model},
		{name: CapAudioToText, body: bodyMultipart, unitKind: event.UnitMillis, units: unitsAudioMillis, required: []string{"audio"}, modelFields: model},
		{name: CapSegmentAnything2, body: bodyMultipart, unitKind: event.UnitPixels, units: unitsImagePixels, required: []string{"image"}, modelFields: model},
		{name: CapImageToText, body: bodyMultipart, unitKind: event.UnitPixels, units: unitsImagePixels, required: []string{"image"}, modelFields: model},
		// go-livepeer's /llm body is OpenAI-shaped: the model is "model".
		{name: CapLLM, body: bodyJSON, unitKind: event.UnitTokens, units: unitsMaxTokens, required: []string{"messages"}, modelFields: []string{"model_id", "model"}},
		{name: CapTextToSpeech, body: bodyJSON, unitKind: event.UnitCharacters, units: unitsCharacters, required: []string{"text"}, modelFields: model},
	}
}

func capSpecByName(name string) (capSpec, bool) {
	for _, c := range capSpecs() {
		if c.name == name {
			return c, true
		}
	}
	return capSpec{}, false
}
