package oracle

import (
	"errors"
	"math"
)

// IPM settings: the stopping tolerance on the scaled problem (primal and
// dual residuals relative to 1 + the norm of b and c, and the relative
// duality gap), the iteration cap, and the fraction of the step to the
// boundary that is taken.
const (
	ipmTol      = 1e-10
	ipmMaxIter  = 200
	ipmStepFrac = 0.995
)

// errIPM is returned when the interior point method does not converge.
var errIPM = errors.New("interior point method did not converge")

// ipm solves the problem with Mehrotra's predictor-corrector primal-dual
// interior point method on the standard form Ax = b, x ≥ 0 with
// variables [x; u; s]. Each iteration solves the normal equations
// (A D Aᵀ) Δy = r, D = X Z⁻¹: because every column has at most one
// nonzero in a capacity row, the capacity block of A D Aᵀ is diagonal,
// and eliminating it leaves a dense Schur complement on the demand rows
// only (nd × nd, nd = classes × regions with demand), formed in
// Σ_k |band k|² ≤ bands × nd² operations and factorised by Cholesky. The
// cost per iteration is linear in the number of orchestrators.
func (p *problem) ipm() (x, u []float64, err error) {
	nd, nb, nx := len(p.rows), len(p.bands), len(p.cols)
	n, m := nx+nd+nb, nd+nb

	// Scale: costs by their largest, b by its largest, each capacity row
	// by its largest work coefficient (its slack is rescaled with it).
	cs := 0.0
	for _, col := range p.cols {
		cs = math.Max(cs, math.Abs(col.cost))
	}
	for _, k := range p.ucost {
		cs = math.Max(cs, math.Abs(k))
	}
	if cs == 0 {
		cs = 1
	}
	rowScale := make([]float64, nb)
	for k, js := range p.byBand {
		rowScale[k] = 1
		for _, j := range js {
			rowScale[k] = math.Max(rowScale[k], p.cols[j].w)
		}
	}
	b := make([]float64, m)
	for i := 0; i < nd; i++ {
		b[i] = p.b[i]
	}
	for k := 0; k < nb; k++ {
		b[nd+k] = p.b[nd+k] / rowScale[k]
	}
	bs := 0.0
	for _, v := range b {
		bs = math.Max(bs, math.Abs(v))
	}
	if bs == 0 {
		bs = 1
	}
	for i := range b {
		b[i] /= bs
	}
	c := make([]float64, n)
	w := make([]float64, nx)
	row := make([]int32, nx)
	band := make([]int32, nx)
	for j, col := range p.cols {
		c[j] = col.cost / cs
		w[j] = col.w / rowScale[col.band]
		row[j], band[j] = col.row, col.band
	}
	for i := 0; i < nd; i++ {
		c[nx+i] = p.ucost[i] / cs
	}

	s := &ipmSystem{nd: nd, nb: nb, nx: nx, w: w, row: row, band: band, byBand: p.byBand,
		m11: make([]float64, nd), m22: make([]float64, nb), schur: make([]float64, nd*nd), t: make([]float64, m)}
	A := func(v, out []float64) {
		clear(out)
		for j := 0; j < nx; j++ {
			out[row[j]] += v[j]
			out[nd+int(band[j])] += w[j] * v[j]
		}
		for i := 0; i < nd; i++ {
			out[i] += v[nx+i]
		}
		for k := 0; k < nb; k++ {
			out[nd+k] += v[nx+nd+k]
		}
	}
	AT := func(y, out []float64) {
		for j := 0; j < nx; j++ {
			out[j] = y[row[j]] + w[j]*y[nd+int(band[j])]
		}
		for i := 0; i < nd; i++ {
			out[nx+i] = y[i]
		}
		for k := 0; k < nb; k++ {
			out[nx+nd+k] = y[nd+k]
		}
	}

	xv, z, y := make([]float64, n), make([]float64, n), make([]float64, m)
	d, rp, rd, rc := make([]float64, n), make([]float64, m), make([]float64, n), make([]float64, n)
	dx, dz, dy := make([]float64, n), make([]float64, n), make([]float64, m)
	dxa, dza := make([]float64, n), make([]float64, n)
	tmp, rhs := make([]float64, n), make([]float64, m)

	// Mehrotra's starting point: least-norm x and least-squares (y, z),
	// shifted into the interior.
	for i := range d {
		d[i] = 1
	}
	if !s.factor(d) {
		return nil, nil, errIPM
	}
	s.solve(b, dy)
	AT(dy, xv)
	A(c, rhs)
	s.solve(rhs, y)
	AT(y, tmp)
	for i := range z {
		z[i] = c[i] - tmp[i]
	}
	shift := func(v []float64) {
		lo := 0.0
		for _, e := range v {
			lo = math.Min(lo, e)
		}
		for i := range v {
			v[i] += -1.5 * lo
		}
	}
	shift(xv)
	shift(z)
	xz, sx, sz := 0.0, 0.0, 0.0
	for i := range xv {
		xz += xv[i] * z[i]
		sx += xv[i]
		sz += z[i]
	}
	for i := range xv {
		if sz > 0 {
			xv[i] += 0.5 * xz / sz
		}
		if sx > 0 {
			z[i] += 0.5 * xz / sx
		}
		// A degenerate start (all of z zero, as when only overflow can
		// serve) still needs an interior point.
		xv[i] = math.Max(xv[i], 1e-3)
		z[i] = math.Max(z[i], 1e-3)
	}

	bnorm, cnorm := normInf(b), normInf(c)
	converged := false
	for it := 0; it < ipmMaxIter; it++ {
		A(xv, tmp[:m])
		for i := 0; i < m; i++ {
			rp[i] = b[i] - tmp[i]
		}
		AT(y, tmp)
		for i := 0; i < n; i++ {
			rd[i] = c[i] - tmp[i] - z[i]
		}
		mu, pobj, dobj := 0.0, 0.0, 0.0
		for i := 0; i < n; i++ {
			mu += xv[i] * z[i]
			pobj += c[i] * xv[i]
		}
		for i := 0; i < m; i++ {
			dobj += b[i] * y[i]
		}
		mu /= float64(n)
		if normInf(rp) <= ipmTol*(1+bnorm) && normInf(rd) <= ipmTol*(1+cnorm) &&
			math.Abs(pobj-dobj) <= ipmTol*(1+math.Abs(pobj)) {
			converged = true
			break
		}
		for i := 0; i < n; i++ {
			d[i] = xv[i] / z[i]
		}
		if !s.factor(d) {
			break
		}
		// direction solves A Δx = rp, AᵀΔy + Δz = rd, ZΔx + XΔz = rc.
		direction := func(rc, dx, dy, dz []float64) {
			for i := 0; i < n; i++ {
				tmp[i] = d[i]*rd[i] - rc[i]/z[i]
			}
			A(tmp, rhs)
			for i := 0; i < m; i++ {
				rhs[i] += rp[i]
			}
			s.solve(rhs, dy)
			AT(dy, tmp)
			for i := 0; i < n; i++ {
				dx[i] = d[i]*(tmp[i]-rd[i]) + rc[i]/z[i]
				dz[i] = rd[i] - tmp[i]
			}
		}
		for i := 0; i < n; i++ {
			rc[i] = -xv[i] * z[i]
		}
		direction(rc, dxa, dy, dza)
		ap, ad := maxStep(xv, dxa), maxStep(z, dza)
		muAff := 0.0
		for i := 0; i < n; i++ {
			muAff += (xv[i] + ap*dxa[i]) * (z[i] + ad*dza[i])
		}
		muAff /= float64(n)
		sigma := math.Pow(muAff/mu, 3)
		for i := 0; i < n; i++ {
			rc[i] = sigma*mu - xv[i]*z[i] - dxa[i]*dza[i]
		}
		direction(rc, dx, dy, dz)
		ap = math.Min(1, ipmStepFrac*maxStep(xv, dx))
		ad = math.Min(1, ipmStepFrac*maxStep(z, dz))
		for i := 0; i < n; i++ {
			xv[i] += ap * dx[i]
			z[i] += ad * dz[i]
		}
		for i := 0; i < m; i++ {
			y[i] += ad * dy[i]
		}
	}
	if !converged {
		return nil, nil, errIPM
	}
	x = make([]float64, nx)
	for j := range x {
		x[j] = xv[j] * bs
	}
	u = make([]float64, nd)
	for i := range u {
		u[i] = xv[nx+i] * bs
	}
	return x, u, nil
}

// maxStep is the largest α with v + α·dv ≥ 0 (1e30 when dv ≥ 0).
func maxStep(v, dv []float64) float64 {
	a := 1e30
	for i, d := range dv {
		if d < 0 {
			a = math.Min(a, -v[i]/d)
		}
	}
	return a
}

func normInf(v []float64) float64 {
	n := 0.0
	for _, e := range v {
		n = math.Max(n, math.Abs(e))
	}
	return n
}

// ipmSystem factorises A D Aᵀ by eliminating the diagonal capacity block.
type ipmSystem struct {
	nd, nb, nx int
	w          []float64
	row, band  []int32
	byBand     [][]int32
	d          []float64 // the D of the last factor
	m11, m22   []float64 // diagonals of the demand and capacity blocks
	schur      []float64 // nd × nd, its Cholesky factor after factor (lower)
	t          []float64
}

// factor forms and factorises the Schur complement
// S = M11 − M12 M22⁻¹ M21 for D = d; false if S is not positive definite
// even after the small-pivot guard.
func (s *ipmSystem) factor(d []float64) bool {
	nd, nx := s.nd, s.nx
	s.d = d
	for i := 0; i < nd; i++ {
		s.m11[i] = d[nx+i]
	}
	for k := 0; k < s.nb; k++ {
		s.m22[k] = d[nx+nd+k]
	}
	for j := 0; j < nx; j++ {
		s.m11[s.row[j]] += d[j]
		s.m22[s.band[j]] += s.w[j] * s.w[j] * d[j]
	}
	S := s.schur
	clear(S)
	for i := 0; i < nd; i++ {
		S[i*nd+i] = s.m11[i]
	}
	for k, js := range s.byBand {
		inv := 1 / s.m22[k]
		for _, j := range js {
			vj := s.w[j] * d[j] * inv
			rj := int(s.row[j]) * nd
			for _, l := range js {
				S[rj+int(s.row[l])] -= vj * s.w[l] * d[l]
			}
		}
	}
	// Cholesky, lower triangle in place; a pivot lost to cancellation is
	// replaced by a huge one, which drops that direction (as LIPSOL does).
	for k := 0; k < nd; k++ {
		diag := S[k*nd+k]
		for q := 0; q < k; q++ {
			diag -= S[k*nd+q] * S[k*nd+q]
		}
		if !(diag > 1e-30*math.Max(1, s.m11[k])) {
			if math.IsNaN(diag) {
				return false
			}
			diag = 1e128
		}
		lk := math.Sqrt(diag)
		S[k*nd+k] = lk
		for i := k + 1; i < nd; i++ {
			v := S[i*nd+k]
			for q := 0; q < k; q++ {
				v -= S[i*nd+q] * S[k*nd+q]
			}
			S[i*nd+k] = v / lk
		}
	}
	return true
}

// solve sets out to the solution of (A D Aᵀ) out = r for the D of the last
// factor.
func (s *ipmSystem) solve(r, out []float64) {
	nd, nx, d := s.nd, s.nx, s.d
	// t2 = r2 / M22; r1' = r1 − M12 t2.
	t := s.t
	copy(t, r)
	for k := 0; k < s.nb; k++ {
		t[nd+k] = r[nd+k] / s.m22[k]
	}
	for j := 0; j < nx; j++ {
		t[s.row[j]] -= s.w[j] * d[j] * t[nd+int(s.band[j])]
	}
	// S y1 = r1' by the Cholesky factor.
	S := s.schur
	y1 := out[:nd]
	for i := 0; i < nd; i++ {
		v := t[i]
		for q := 0; q < i; q++ {
			v -= S[i*nd+q] * y1[q]
		}
		y1[i] = v / S[i*nd+i]
	}
	for i := nd - 1; i >= 0; i-- {
		v := y1[i]
		for q := i + 1; q < nd; q++ {
			v -= S[q*nd+i] * y1[q]
		}
		y1[i] = v / S[i*nd+i]
	}
	// y2 = (r2 − M21 y1) / M22.
	y2 := out[nd:]
	copy(y2, r[nd:])
	for j := 0; j < nx; j++ {
		y2[s.band[j]] -= s.w[j] * d[j] * y1[s.row[j]]
	}
	for k := range y2 {
		y2[k] /= s.m22[k]
	}
}
