package kubeletclient

import (
	"encoding/pem"
	"net/http/httptest"

	"k8s.io/apimachinery/pkg/types"
)

type nodeName = types.NodeName

func pemOf(s *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
}
