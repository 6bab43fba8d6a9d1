package gsrmt

import "strings"

// Classifier is the name of the model's last layer, the linear map from the
// head's features to one logit per class (MODEL.md section 9): its state
// entries are Classifier+".weight", of shape (classes, head_hidden), and
// Classifier+".bias", of shape (classes). It is the only part of the model
// whose shape depends on the class count.
const Classifier = "head.fc"

// IsClassifier reports whether a state entry belongs to the classifier.
func IsClassifier(name string) bool {
	return strings.HasPrefix(name, Classifier+".")
}
